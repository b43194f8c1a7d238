"""Child processes of the agent: started with their output pumped, line by line and stamped,
into a log file, and tied to the agent's life (Linux: they get SIGTERM if the agent dies, so a
crashed agent never leaves orphans holding ports that the next agent cannot see)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

PR_SET_PDEATHSIG = 1
STAMP_WIDTH = len("2026-11-26T20:00:00.000000Z")


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def exit_reason(code: int) -> str:
    """How a process ended, in the words ``kubectl describe`` uses."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    if code == 143:
        return "exited 143 (SIGTERM)"
    return "completed" if code == 0 else f"Error: exit code {code}"


class Child:
    """One running child: its process, the pump writing its log, its last lines."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self.tail: deque[str] = deque(maxlen=20)
        self.pumped: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    async def wait(self) -> int:
        code = await self.process.wait()
        if self.pumped is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pumped, 5)
        return code

    def last_line(self) -> str:
        return next((line for line in reversed(self.tail) if line.strip()), "")


async def spawn(
    command: Sequence[str],
    log: Path,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Child:
    """Start ``command`` in ``cwd`` (always given: a child never inherits a folder by accident)
    with stdout and stderr appended to ``log`` as ``<UTC stamp> <line>``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=cwd,
        preexec_fn=_die_with_parent,
        limit=1 << 20,
    )
    child = Child(process, log)
    child.pumped = asyncio.create_task(_pump(child, on_line), name=f"pump-{process.pid}")
    return child


async def _pump(child: Child, on_line: Callable[[str], None] | None) -> None:
    assert child.process.stdout is not None
    with child.log.open("a", encoding="utf-8") as sink:
        while True:
            raw = await child.process.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            sink.write(f"{stamp()} {line}\n")
            sink.flush()
            child.tail.append(line)
            if on_line is not None:
                on_line(line)
