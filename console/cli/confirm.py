"""The CLI's confirmation of a change to several targets: the count and the targets are
shown, and the operator types the count (or gives ``--yes``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from console.cli.errors import ActionFailed, UsageError
from console.views.format import printable


def confirm(action: str, targets: Sequence[str], *, yes: bool, dry_run: bool) -> None:
    """Return when ``action`` may go ahead on ``targets``; raise when it may not (no terminal
    to ask: :class:`UsageError`; the operator said no: :class:`ActionFailed`)."""
    if len(targets) <= 1 or yes or dry_run:
        return
    shown = "\n  ".join(printable(t) for t in targets)
    print(f"{action} {len(targets)} deployments:\n  {shown}", file=sys.stderr)
    if not sys.stdin.isatty():
        raise UsageError(f"{action} of {len(targets)} targets needs confirmation: add --yes")
    try:
        answer = input(f"type {len(targets)} to {action} them all: ").strip()
    except EOFError:
        answer = ""
    if answer != str(len(targets)):
        raise ActionFailed(f"{action} cancelled; nothing was sent")
