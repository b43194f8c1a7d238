"""Finding this machine's processes by their command line (what tests use to kill or count a
predictor, an agent or a traffic loop they did not start themselves)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def pids_where(matches: Callable[[list[str]], bool]) -> list[int]:
    """The pids, in order, of the processes whose command line (its words) ``matches``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if matches(words):
            found.append(int(entry.name))
    return sorted(found)
