"""A typed reader over parsed TOML tables for profiles.

Each accessor consumes one key and checks its type; :meth:`Table.finish` then reports any key
nobody consumed, so an unknown key (a typo such as ``replica``) is an error instead of a setting
silently ignored. Every error names the file, the dotted key and what was expected.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ProfileError(ValueError):
    """A profile that cannot be found, parsed or validated; the message is for the operator."""


def display_path(path: Path | str) -> str:
    """``path`` with the home folder shown as ``~``, as an operator would type it."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def describe(value: object) -> str:
    """A TOML-flavoured rendering of a bad value for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(text: str, *, home: bool) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; with ``home``, a leading ``~`` too.

    Only the braced form is expanded so a literal ``$`` elsewhere (in a pip requirement or a
    URL) survives. An unset variable without a default raises ``KeyError`` with its name rather
    than quietly becoming an empty string and a wrong path.
    """

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value:
            return value
        if default is None:
            raise KeyError(name)
        return default

    expanded = _VAR.sub(one, text)
    return os.path.expanduser(expanded) if home else expanded


# A Kubernetes resource.Quantity: a signed decimal with an optional binary (Ki..Ei), decimal
# (n, u, m, k, M..E) or exponent (e3) suffix. Negative quantities make no sense for resources.
QUANTITY = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
# A qualified resource name such as ``cpu``, ``memory`` or ``nvidia.com/gpu``.
RESOURCE_NAME = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class Quota:
    """A number of targets, absolute (``3``) or relative to the batch size (``10%``)."""

    count: int | None = None
    percent: float | None = None

    def of(self, total: int) -> int:
        """How many of ``total`` targets this quota means (a percentage rounds up)."""
        if self.count is not None:
            return min(self.count, total)
        assert self.percent is not None
        return min(total, math.ceil(total * self.percent / 100 - 1e-9))

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        return f"{self.percent:g}%"


_QUOTA = re.compile(r"^\s*(?:(\d+)|(\d+(?:\.\d+)?)\s*%)\s*$")


def parse_quota(text: str) -> Quota:
    """``"3"`` or ``"12.5%"``; raises ``ValueError`` with the expectation."""
    match = _QUOTA.match(text)
    if match is None:
        raise ValueError("a count such as 3 or a percentage such as 10%")
    if match.group(1) is not None:
        return Quota(count=int(match.group(1)))
    percent = float(match.group(2))
    if not 0 < percent <= 100:
        raise ValueError("a percentage above 0% and at most 100%")
    return Quota(percent=percent)


def parse_waves(text: str) -> tuple[Quota, ...]:
    """Cumulative wave sizes such as ``"1,10%,50%,100%"``.

    Counts (canaries) come first, then percentages; each kind strictly increases and the last
    wave is 100% so that a plan always covers every target.
    """
    expect = "waves such as 1,10%,100%: counts then percentages, increasing, ending at 100%"
    try:
        waves = tuple(parse_quota(part) for part in text.split(","))
    except ValueError:
        raise ValueError(expect) from None
    counts = [w.count for w in waves if w.count is not None]
    percents = [w.percent for w in waves if w.percent is not None]
    counts_first = all(w.count is not None for w in waves[: len(counts)])
    increasing = all(a < b for a, b in itertools.pairwise(counts)) and all(
        a < b for a, b in itertools.pairwise(percents)
    )
    if not (counts_first and increasing and waves[-1].percent == 100 and 0 not in counts):
        raise ValueError(expect)
    return waves


class Table:
    """One TOML table being read: consumes keys, checks types, remembers where it came from."""

    def __init__(self, data: Mapping[str, object], source: str, prefix: str = "") -> None:
        self._data = data
        self._source = source
        self._prefix = prefix
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted key of ``name`` in this table, for messages."""
        return f"{self._prefix}{name}"

    def error(self, name: str, message: str) -> ProfileError:
        return ProfileError(f"{self._source}: {self.key(name)}: {message}")

    def bad(self, name: str, expected: str, value: object) -> ProfileError:
        return self.error(name, f"expected {expected}, got {describe(value)}")

    def has(self, name: str) -> bool:
        return name in self._data

    def raw(self, name: str) -> object:
        self._seen.add(name)
        return self._data.get(name)

    def require(self, name: str, expected: str) -> object:
        if name not in self._data:
            raise self.error(name, f"missing; expected {expected}")
        return self.raw(name)

    def string(self, name: str, default: str, *, choices: tuple[str, ...] = ()) -> str:
        value = self.optional_string(name, choices=choices)
        return default if value is None else value

    def optional_string(self, name: str, *, choices: tuple[str, ...] = ()) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        expected = " | ".join(json.dumps(c) for c in choices) if choices else "a string"
        if not isinstance(value, str) or (choices and value not in choices):
            raise self.bad(name, expected, value)
        return value

    def expanded(self, name: str, default: str, *, home: bool) -> str:
        """A string with ``${VAR}`` (and, for paths, ``~``) expanded; the default is too."""
        value = self.optional_string(name)
        return self._expand(name, default if value is None else value, home=home)

    def optional_expanded(self, name: str, *, home: bool) -> str | None:
        value = self.optional_string(name)
        return None if value is None else self._expand(name, value, home=home)

    def _expand(self, name: str, text: str, *, home: bool) -> str:
        try:
            return expand(text, home=home)
        except KeyError as exc:
            raise self.error(name, f"environment variable {exc.args[0]} is not set") from None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.bad(name, "true or false", value)
        return value

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self.optional_integer(name, low=low, high=high)
        return default if value is None else value

    def optional_integer(self, name: str, *, low: int = 0, high: int | None = None) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        expected = f"an integer {low}..{high}" if high is not None else f"an integer >= {low}"
        # bool is an int in Python but `true` is never a number in a profile.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(name, expected, value)
        if value < low or (high is not None and value > high):
            raise self.bad(name, expected, value)
        return value

    def number(
        self, name: str, default: float, *, low: float = 0.0, high: float | None = None
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        expected = f"a number {low:g}..{high:g}" if high is not None else f"a number >= {low:g}"
        # TOML writes 250 as an integer; a float setting accepts it.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(name, expected, value)
        number = float(value)
        if not math.isfinite(number) or number < low or (high is not None and number > high):
            raise self.bad(name, expected, value)
        return number

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.bad(name, "an array of non-empty strings", value)
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.raw(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.bad(name, "a table of strings", value)
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.error(f"{name}.{key}", f"expected a string, got {describe(item)}")
        return dict(value)

    def table(self, name: str) -> Table:
        """The sub-table ``name`` (empty when absent)."""
        value = self.raw(name)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.bad(name, "a table", value)
        return Table(value, self._source, f"{self.key(name)}.")

    def tables(self, name: str) -> list[Table]:
        """An array of tables such as ``tolerations = [{...}, {...}]``."""
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.bad(name, "an array of tables", value)
        return [Table(v, self._source, f"{self.key(name)}[{i}].") for i, v in enumerate(value)]

    def finish(self) -> None:
        """Reject keys that no accessor consumed."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "no keys"
            raise self.error(unknown[0], f"unknown key; expected one of: {known}")
