"""``fleetdeck``: the command line (parse, call, print). The TUI shares its actions.

Exit status: 0 success, 1 the action failed (for any target), 2 bad usage. ``-o json`` output is
stable: lists of the types in ``console.model`` with their field names. A mutation on several
targets asks for confirmation showing the count and the targets unless ``--yes``; a read-only
profile or ``--readonly`` refuses mutations before anything is sent. Every mutation, dry runs
included, is appended to the audit log.

Start-up is kept to parsing: this module imports argparse and the grammar only; what a command
needs is imported when it runs (``console.cli.dispatch``), so ``--help`` and each TAB of shell
completion answer at once.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from console.cli.parser import build_parser

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, or exit 2 with what to fix (argparse's usage line and message)."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser, always_complete_options="long")
    args = parser.parse_args(argv)
    if args.namespace and args.all_namespaces:  # given on either side of the command
        parser.error("-n/--namespace and -A/--all-namespaces: give one of them")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from console.cli.dispatch import dispatch

    return dispatch(args)
