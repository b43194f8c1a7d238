"""Runs what was parsed: the deck (no command), ``completion``, or a command; every error as
one line on stderr and its exit status (1 the action failed, 2 bad usage, 130 Ctrl-C)."""

from __future__ import annotations

import argparse
import sys

from console.backends import BackendUnavailable
from console.backends.base import BackendError, error_line
from console.batch.journal import JournalError
from console.cli import batch as batch_cli
from console.cli import commands
from console.cli.main import EXIT_FAILED, EXIT_USAGE
from console.core import guard
from console.local.manage import AgentCommandError
from console.profile import ProfileError
from console.views.format import printable


def dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command is None:  # no subcommand: the deck (TUI)
            from console.tui.launch import open_deck

            return open_deck(args.profile, commands.session_request(args))
        return commands.run(args)
    except (commands.UsageError, ValueError) as exc:  # bad names, selectors, durations
        print(f"fleetdeck: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ProfileError,
        BackendUnavailable,
        BackendError,  # the Kubernetes backend's, its templates', the local runtime's
        commands.ActionFailed,
        guard.Refusal,
        batch_cli.BatchFailed,
        JournalError,
        AgentCommandError,
    ) as exc:
        print(f"fleetdeck: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `fleetdeck ls | head`: the reader has what it wanted
        sys.stderr.close()
        return EXIT_FAILED
    except Exception as exc:  # never a traceback: say what broke, in one line
        print(f"fleetdeck: {type(exc).__name__}: {printable(error_line(exc))}", file=sys.stderr)
        return EXIT_FAILED
