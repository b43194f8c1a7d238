"""The lines of a log view: a bounded ring, search, and the pod prefix of merged streams.

Pure (no Textual): the log widget renders from it and the unit tests pin it down. Lines are
numbered absolutely from the first line ever added, so a position (a search hit, the top of the
view) stays meaningful while old lines fall off the front.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

DEFAULT_CAPACITY = 50_000

# Distinct, readable on dark and light backgrounds, and still different under 256 colours.
POD_PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "bright_blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "orange3",
    "deep_sky_blue1",
    "plum2",
)


class LogBuffer:
    """The newest ``capacity`` lines; older ones are dropped as new ones arrive."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"a log buffer holds at least one line, not {capacity}")
        self.capacity = capacity
        self._ring: list[str] = []
        self._start = 0  # where the oldest line sits in the ring once it is full
        self.total = 0  # lines ever added; the next line's absolute number

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def first(self) -> int:
        """The absolute number of the oldest line still held."""
        return self.total - len(self._ring)

    @property
    def dropped(self) -> int:
        """How many lines fell off the front."""
        return self.first

    def extend(self, lines: Sequence[str], skipped: int = 0) -> None:
        """Add ``lines``; ``skipped`` lines came before them but were never handed over (a reader
        that fell behind): they count, and the lines held from before that gap are dropped too."""
        if skipped:
            self.total += skipped
            self.clear()
        capacity, ring = self.capacity, self._ring
        self.total += len(lines)
        if len(lines) >= capacity:  # only the newest ``capacity`` survive
            self._ring = list(lines[-capacity:])
            self._start = 0
            return
        room = capacity - len(ring)
        if room:
            ring.extend(lines[:room])
            lines = lines[room:]
        start = self._start
        while lines:  # full: overwrite the oldest, a slice at a time
            chunk = lines[: capacity - start]
            ring[start : start + len(chunk)] = chunk
            start = (start + len(chunk)) % capacity
            lines = lines[len(chunk) :]
        self._start = start

    def __getitem__(self, absolute: int) -> str:
        """The line numbered ``absolute``; IndexError when dropped or not yet written."""
        offset = absolute - self.first
        if not 0 <= offset < len(self._ring):
            raise IndexError(f"line {absolute} is not held (held: {self.first}..{self.total - 1})")
        return self._ring[(self._start + offset) % len(self._ring)]

    def lines(self, start: int | None = None, stop: int | None = None) -> Iterator[str]:
        """Held lines from absolute ``start`` (default: the oldest) up to ``stop``."""
        begin = max(self.first, self.first if start is None else start)
        end = min(self.total, self.total if stop is None else stop)
        for absolute in range(begin, end):
            yield self[absolute]

    def clear(self) -> None:
        """Forget every line; numbering goes on, so old positions stay invalid."""
        self._ring = []
        self._start = 0

    def reset(self) -> None:
        """Start over, numbering from 0 (a new stream)."""
        self.clear()
        self.total = 0

    def find(self, query: SearchQuery, start: int, *, forward: bool = True) -> int | None:
        """The next line after ``start`` (or before it) that matches, wrapping around."""
        held = len(self._ring)
        if not held:
            return None
        first = self.first
        origin = min(max(start, first - 1), self.total) - first
        for step in range(1, held + 1):
            offset = (origin + step) % held if forward else (origin - step) % held
            if query.matches(self._ring[(self._start + offset) % held]):
                return first + offset
        return None

    def count(self, query: SearchQuery) -> int:
        return sum(1 for line in self._ring if query.matches(line))


@dataclass(frozen=True)
class SearchQuery:
    """What ``/`` looks for: a regex when it is one, else plain text; lower case ignores case."""

    text: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> SearchQuery:
        if not text:
            raise ValueError("an empty search matches every line; type what to look for")
        flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE  # smart case, as in vim
        try:
            pattern = re.compile(text, flags)
        except re.error:
            pattern = re.compile(re.escape(text), flags)
        return cls(text, pattern)

    def matches(self, line: str) -> bool:
        return self.pattern.search(line) is not None

    def spans(self, line: str) -> list[tuple[int, int]]:
        """Where the query matches ``line`` (empty matches skipped), to highlight them."""
        return [m.span() for m in self.pattern.finditer(line) if m.end() > m.start()]


def split_pod_prefix(line: str) -> tuple[str, str]:
    """``"[pod] text"`` (how merged streams arrive) → ``("pod", "text")``; else ``("", line)``."""
    if line.startswith("["):
        end = line.find("] ")
        if end > 1 and " " not in line[1:end]:
            return line[1:end], line[end + 2 :]
    return "", line


class PodColours:
    """A colour per pod of a merged stream: the known pods get distinct colours in name order
    (the same on every run), others one picked by a stable hash of the name."""

    def __init__(self, pods: Iterable[str] = (), palette: Sequence[str] = POD_PALETTE) -> None:
        self.palette = tuple(palette)
        ordered = sorted(pods)
        self._known = {pod: self.palette[i % len(self.palette)] for i, pod in enumerate(ordered)}

    def __call__(self, pod: str) -> str:
        known = self._known.get(pod)
        if known is not None:
            return known
        return self.palette[zlib.crc32(pod.encode()) % len(self.palette)]
