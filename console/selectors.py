"""Label selectors as ``kubectl -l`` takes them: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
comma-separated (all must hold). Set-based forms (``in``, ``notin``) are refused clearly."""

from __future__ import annotations

from collections.abc import Callable, Mapping

Matcher = Callable[[Mapping[str, str]], bool]


class SelectorError(ValueError):
    pass


def parse_selector(text: str | None) -> Matcher:
    if not text or not text.strip():
        return lambda labels: True
    tests: list[Matcher] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise SelectorError(f"empty term in selector {text!r}")
        if " in " in part or " notin " in part or "(" in part:
            raise SelectorError(f"set-based selector {part!r} is not supported; use k=v, k!=v")
        tests.append(_term(part))
    return lambda labels: all(test(labels) for test in tests)


def _term(part: str) -> Matcher:
    if "!=" in part:
        key, value = (s.strip() for s in part.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "=" in part:
        key, value = (s.strip() for s in part.replace("==", "=", 1).split("=", 1))
        if not key:
            raise SelectorError(f"no label key in {part!r}")
        return lambda labels: labels.get(key) == value
    if part.startswith("!"):
        key = part[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: part in labels
