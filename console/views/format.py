"""Formatting shared by every front-end: text from a backend made printable, kubectl's AGE, and
the model types as plain JSON values."""

from __future__ import annotations

import dataclasses
import enum
import re
from datetime import UTC, datetime
from typing import Any

# What must never reach a terminal raw: C0 controls (ESC starts escape sequences, CR and
# backspace rewrite what was printed, a newline forges a row), DEL, C1 controls (0x9b is a
# one-byte CSI), the line and paragraph separators, and the bidirectional overrides that make
# text read differently than it is ("Trojan Source").
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as one line a terminal shows as it is: every control character (and the few
    invisible characters that reorder or break lines) written as an escape, e.g. a newline as
    ``\\n`` and ESC as ``\\x1b``. Names, messages and reasons from a backend, an agent or a
    stored row go through this before they are printed; logs are the pod's own output and don't.
    """
    value = text if isinstance(text, str) else str(text)
    if _UNPRINTABLE.search(value) is None:  # the common case: nothing to copy
        return value
    return _UNPRINTABLE.sub(_escape, value)


# SGR sequences (colours, text attributes): ESC [ digits and ';' m. Any other sequence a pod
# writes (cursor moves, a title change, clearing the screen) is shown escaped.
SGR = re.compile(r"\x1b\[[0-9;]*m")


def printable_log_line(line: str, *, colours: bool) -> str:
    """A pod's log line for a terminal: its SGR colours kept (``colours``) or dropped, tabs kept
    (a stack trace's indent), every other control character escaped as :func:`printable`
    escapes it. The CLI prints this; the deck decodes its colours."""
    kept: list[str] = []
    position = 0
    for match in SGR.finditer(line):
        kept.append(_printable_keeping_tabs(line[position : match.start()]))
        if colours:
            kept.append(match.group())
        position = match.end()
    kept.append(_printable_keeping_tabs(line[position:]))
    return "".join(kept)


def _printable_keeping_tabs(text: str) -> str:
    return "\t".join(printable(part) for part in text.split("\t"))


def to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def age(since: datetime | None, now: datetime | None = None) -> str:
    """kubectl's AGE column: 45s, 12m, 3h, 4d."""
    if since is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
