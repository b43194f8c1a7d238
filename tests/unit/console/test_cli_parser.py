"""The CLI's grammar (issue 17): global options on either side of the command, help text on
every option and an example on every command, and a parser that imports argparse alone."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from console.cli.main import parse
from console.cli.parser import build_parser
from console.cli.printing import log_line


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its words (``batch list``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in commands(sub).items()})
    return found


def test_every_option_has_help_and_every_command_an_example() -> None:
    every = commands(build_parser())
    assert {"ls", "describe", "events", "logs", "completion", "batch list"} <= set(every)
    missing = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in every.items()
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not action.help
    ]
    assert missing == []
    without_example = [name for name, p in every.items() if "fleetdeck " not in (p.epilog or "")]
    assert without_example == []


@pytest.mark.parametrize(
    "argv",
    [
        ["-A", "ls"],
        ["ls", "-A"],
        ["ls", "--all-namespaces", "--profile", "kwok", "--readonly"],
    ],
)
def test_global_options_are_taken_before_or_after_the_command(argv: list[str]) -> None:
    args = parse(argv)
    assert args.all_namespaces is True
    assert args.namespace is None


def test_an_option_before_the_command_is_kept_when_the_command_does_not_repeat_it() -> None:
    args = parse(["--profile", "kwok", "-n", "models", "logs", "-p", "pod-1", "--context", "c"])
    assert (args.profile, args.namespace, args.context) == ("kwok", "models", "c")
    assert args.previous is True
    assert parse(["status", "-w", "digits"]).watch is True
    assert parse(["ls", "--json"]).output == "json"


def test_the_parser_imports_argparse_and_no_backend() -> None:
    """``--help`` and completion must not pay for what a command needs (kubernetes, yaml,
    numpy, the backends)."""
    probe = (
        "import sys, console.cli.main as m; m.build_parser();"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in "
        "('kubernetes', 'yaml', 'numpy', 'textual', 'argcomplete', 'serving') "
        "or n.startswith('console.backends') or n.startswith('console.core'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_log_lines_keep_colours_only_when_asked_and_escape_other_controls() -> None:
    line = "\x1b[1;31mERROR\x1b[0m\tboom\x1b[2J\r"
    assert log_line(line, colours=True) == "\x1b[1;31mERROR\x1b[0m\tboom\\x1b[2J\\r\x1b[0m"
    assert log_line(line, colours=False) == "ERROR\tboom\\x1b[2J\\r"
    assert log_line("plain", colours=True) == "plain"
