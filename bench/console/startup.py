"""The CLI's start-up against bare Python's: ``fleetdeck --help``, a shell's completion request
and ``fleetdeck ls`` on the local profile, each against ``python -c "import argparse"``.

    python -m bench.console.startup [--runs 21] [--write]

Every command is a fresh process started as a user starts it (the installed ``fleetdeck``
script, the same interpreter), run ``--runs`` times with the commands interleaved (A B C D A B
C D ...) so a busy neighbour hurts all alike, as hyperfine's repeated runs do; the table gives
each command's median, its spread (quartiles) and its ratio to bare Python's median. The
completion request is what bash sends at a TAB after ``fleetdeck de`` (argcomplete's protocol;
its answer goes to a file). ``ls`` runs on a local profile of its own (temporary XDG folders, a
free gateway port) whose agent is started by a warm-up run and stopped at the end. Issue 17's
target: ``--help`` and completion at most 3 × bare Python.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import readme

FLEETDECK = str(Path(sys.executable).parent / "fleetdeck")
TARGET_RATIO = 3.0


def timed(command: Sequence[str], env: Mapping[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def completion_env(env: Mapping[str, str], line: str, answer: Path) -> dict[str, str]:
    """What bash's completion function sets before it runs ``fleetdeck`` (argcomplete)."""
    return {
        **env,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
        "_ARGCOMPLETE_IFS": "\013",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command")
    parser.add_argument("--write", action="store_true", help="record the table in bench/README.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-startup-") as folder:
        home = Path(folder)
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_RUNTIME_DIR": str(home / "run"),
            "FLEETDECK_PROFILE": "startup",
        }
        (home / "run").mkdir(mode=0o700)
        profiles = home / "config" / "fleetdeck" / "profiles"
        profiles.mkdir(parents=True)
        (profiles / "startup.toml").write_text(  # the local profile, on a port of its own
            f'backend = "local"\n[store]\nroot = "{home / "store"}"\n'
            f"[local]\ngateway_port = {free_port()}\n"
        )
        answer = home / "completion.out"
        commands: dict[str, tuple[list[str], Mapping[str, str]]] = {
            'python -c "import argparse"': ([sys.executable, "-c", "import argparse"], env),
            "fleetdeck --help": ([FLEETDECK, "--help"], env),
            "completion (TAB after `fleetdeck de`)": (
                [FLEETDECK],
                completion_env(env, "fleetdeck de", answer),
            ),
            "fleetdeck ls (local profile, agent running)": ([FLEETDECK, "ls"], env),
        }
        try:
            for command, command_env in commands.values():  # warm-up: caches, the local agent
                timed(command, command_env)
            assert "describe" in answer.read_text(), "the completion request answered nothing"
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, (command, command_env) in commands.items():
                    times[name].append(timed(command, command_env))
        finally:
            subprocess.run([FLEETDECK, "agent", "stop"], env=env, capture_output=True, check=False)
    baseline = statistics.median(times['python -c "import argparse"'])
    rows = []
    for name, samples in times.items():
        quartiles = statistics.quantiles(samples, n=4)
        median = statistics.median(samples)
        rows.append(
            f"| {name} | {median * 1000:.0f} | {quartiles[0] * 1000:.0f}–"
            f"{quartiles[2] * 1000:.0f} | {median / baseline:.1f} × |"
        )
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    report = "\n".join(
        [
            f"### CLI start-up ({when}, {os.cpu_count()} cores; {args.runs} runs of each, "
            "interleaved; the installed `fleetdeck` script)",
            "",
            "| command | median ms | quartiles ms | × bare Python |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Target (issue 17): `--help` and completion at most {TARGET_RATIO:g} × bare Python. "
            "The parser (`console/cli/parser.py`) imports argparse alone; a command imports "
            "what it needs when it runs.",
        ]
    )
    print(report)
    if args.write:
        readme.record("console-startup", report, "## Console")
    return 0


if __name__ == "__main__":
    sys.exit(main())
