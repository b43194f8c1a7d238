"""A real terminal for end-to-end tests: a detached tmux session of a fixed size running one
command, driven with ``send-keys`` and read with ``capture-pane`` — what a user at a terminal
types and sees.

The command runs under a clean environment (only what the test gives, so the user's own
settings never leak in); when it exits, its exit code is written to a file and the pane stays
open on a marker line, so a test can check what the terminal looks like after the program quit.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from tests.infra.require import missing_infra

EXITED = "terminal-test: the command exited with"


class TmuxTerminal:
    """One tmux server (its own socket) with one session of ``width`` x ``height``."""

    def __init__(self, width: int, height: int) -> None:
        if shutil.which("tmux") is None:
            missing_infra("tmux (the end-to-end terminal tests drive the deck inside it)")
        self.width = width
        self.height = height
        # A short folder of its own: a unix socket path must stay under ~100 characters.
        self.folder = Path(tempfile.mkdtemp(prefix="fd-tmux-"))
        self.socket = self.folder / "tmux.sock"
        self.exit_file = self.folder / "exit-code"
        self.session = "deck"
        self.pane = "deck:0"  # the program's window, whichever window is in front

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Run ``command`` in the session under exactly ``env``."""
        variables = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = self.folder / "run.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"env -i {variables} {shlex.join(command)}\n"
            "code=$?\n"
            f"echo $code > {shlex.quote(str(self.exit_file))}\n"
            f'echo "{EXITED} $code"\n'
            "exec sleep 86400\n"  # keeps the pane (and what it shows) until close()
        )
        self._tmux(
            "new-session", "-d", "-s", self.session,
            "-x", str(self.width), "-y", str(self.height),
            "sh", str(script),
        )  # fmt: skip

    def screen(self, *, escapes: bool = False) -> str:
        """What the pane shows now (with ``escapes``: its colours and attributes too)."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.pane)

    def press(self, *keys: str) -> None:
        """Keys by tmux's names (``Enter``, ``Escape``, ``/``, ``u``), one after another."""
        for key in keys:
            self._tmux("send-keys", "-t", self.pane, key)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.pane, "-l", text)

    def command(self, text: str) -> None:
        """The deck's ``:`` command line: open it, type ``text``, Enter."""
        self.press(":")
        self.wait_for("the command line", lambda s: "deploy | jobs" in s)
        self.type(text)
        self.press("Enter")

    def flag(self, name: str) -> str:
        """A pane format flag, e.g. ``alternate_on`` (the program's full-screen buffer)."""
        return self._tmux("display-message", "-p", "-t", self.pane, f"#{{{name}}}").strip()

    def to_background(self) -> None:
        """Another window in front of the program's, as when the user looks elsewhere: tmux
        then flags a bell in the program's window (``window_bell_flag``)."""
        self._tmux("new-window", "-t", self.session, "sleep 86400")

    def wait_for(self, what: str, seen: Callable[[str], bool], timeout: float = 60.0) -> str:
        """Poll the pane until ``seen(screen)``; fail after ``timeout`` showing the last screen.
        Tests wait with this and never assert on elapsed time."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if seen(shown):
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; screen:\n{shown}")
            time.sleep(0.2)

    def exit_code(self) -> int | None:
        try:
            return int(self.exit_file.read_text())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Stop the tmux server and what runs in it (the command gets SIGHUP)."""
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def table_row(screen: str, name: str) -> dict[str, str] | None:
    """The fleet table's row of ``name`` as {column title: cell}, by the header line's titles
    (sort arrows dropped); None when the row is not on screen."""
    lines = screen.splitlines()
    header = next((line for line in lines if line.split()[:1] and "NAME" in line.split()[0]), None)
    if header is None:
        return None
    titles = [t.strip("▲▼") for t in header.split()]
    for line in lines:
        cells = line.split()
        if name in cells[:2]:  # a marked row has a mark before its name
            return dict(zip(titles, cells[cells.index(name) :], strict=False))
    return None
