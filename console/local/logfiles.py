"""Reading the agent's log files (``<UTC stamp> <line>`` per line) as ``kubectl logs`` shows
pods: tail, since, timestamps, follow, several merged with a ``[pod]`` prefix."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.local.process import STAMP_WIDTH

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LogQuery:
    files: Sequence[tuple[str, Path]]  # (pod, file)
    follow: bool
    tail: int | None
    since: timedelta | None
    timestamps: bool


def _shown(raw: str, query: LogQuery, prefix: str, cutoff: str) -> str | None:
    stamp, _, text = raw.rstrip("\n").partition(" ")
    if len(stamp) != STAMP_WIDTH:  # not one of ours: show as it is
        stamp, text = "", raw.rstrip("\n")
    if cutoff and stamp and stamp < cutoff:
        return None
    shown = f"{stamp} {text}" if query.timestamps and stamp else text
    return prefix + shown


async def read_logs(query: LogQuery, alive: Callable[[str], bool]) -> AsyncIterator[str]:
    """The lines of every file; with ``follow``, new ones as they are written, until no pod is
    alive any more and everything written was read (or the reader goes away)."""
    merged = len(query.files) > 1
    cutoff = ""
    if query.since is not None:
        cutoff = (datetime.now(UTC) - query.since).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    offsets: dict[str, int] = {}
    inodes: dict[str, int] = {}  # a restart replaces the file (the old one becomes .previous)
    for pod, path in query.files:
        prefix = f"[{pod}] " if merged else ""
        lines: list[str] = []
        if path.exists():
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                inodes[pod] = os.fstat(handle.fileno()).st_ino
                lines = handle.readlines()
                offsets[pod] = handle.tell()
        else:
            offsets[pod] = 0
        if lines and not lines[-1].endswith("\n"):  # half-written: read it when complete
            offsets[pod] -= len(lines.pop().encode("utf-8"))
        shown = [s for raw in lines if (s := _shown(raw, query, prefix, cutoff)) is not None]
        for line in shown[max(0, len(shown) - query.tail) :] if query.tail is not None else shown:
            yield line
    if not query.follow:
        return
    while True:
        living = any(alive(pod) for pod, _ in query.files)
        for pod, path in query.files:
            if not path.exists():
                continue
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                opened = os.fstat(handle.fileno())
                # Replaced (a restart) or truncated: read the new file from the top. The size
                # alone misses a new file that grew past the old offset between two polls.
                if opened.st_ino != inodes.get(pod) or opened.st_size < offsets[pod]:
                    offsets[pod] = 0
                    inodes[pod] = opened.st_ino
                handle.seek(offsets[pod])
                chunk = handle.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            offsets[pod] += len(complete.encode("utf-8"))
            prefix = f"[{pod}] " if merged else ""
            for raw in complete.splitlines():
                shown_line = _shown(raw, query, prefix, cutoff)
                if shown_line is not None:
                    yield shown_line
        if not living:
            return
        await asyncio.sleep(POLL_SECONDS)
