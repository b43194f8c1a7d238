"""Label selectors as ``kubectl -l`` takes them, with Kubernetes' own grammar and rules.

Comma-separated requirements, all of which must hold:

- equality: ``k=v``, ``k==v``, ``k!=v`` (``!=`` also holds when the label is absent);
- sets: ``k in (a,b)``, ``k notin (a,b)`` (``notin`` also holds when the label is absent);
- existence: ``k``, ``!k``.

Keys are qualified names (an optional DNS subdomain prefix and ``/``, then at most 63
characters) and values label values (at most 63 characters), as the API server checks them:
a selector it would refuse is refused here too, saying which part is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Matcher = Callable[[Mapping[str, str]], bool]

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"(?:(?P<prefix>{_PREFIX})/)?(?P<name>{_NAME})")
_VALUE = re.compile(rf"(?:{_NAME})?")
_EQUALITY = re.compile(r"^\s*(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)\s*$")
_SET = re.compile(r"^\s*(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EXISTS = re.compile(r"^\s*(?P<negated>!)?\s*(?P<key>[^\s=!()]+)\s*$")


class SelectorError(ValueError):
    pass


def parse_selector(text: str | None) -> Matcher:
    """A function telling whether a set of labels satisfies ``text`` (everything, when empty)."""
    if not text or not text.strip():
        return lambda labels: True
    tests = [_requirement(term, text) for term in _terms(text)]
    return lambda labels: all(test(labels) for test in tests)


def _terms(text: str) -> list[str]:
    """The requirements: split at the commas outside parentheses."""
    terms: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth > 1:
                raise SelectorError(f"nested parentheses in selector {text!r}")
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in selector {text!r}")
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    if depth:
        raise SelectorError(f"unclosed '(' in selector {text!r}")
    terms.append(text[start:])
    for term in terms:
        if not term.strip():
            raise SelectorError(f"empty requirement in selector {text!r}")
    return terms


def _requirement(term: str, text: str) -> Matcher:
    if match := _SET.match(term):
        key = _key(match["key"])
        values = frozenset(_value(v.strip()) for v in match["values"].split(","))
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(term):
        key, value = _key(match["key"]), _value(match["value"])
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(term):
        key = _key(match["key"])
        if match["negated"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(
        f"cannot read {term.strip()!r} in selector {text!r}: use k=v, k!=v, "
        "k in (a,b), k notin (a,b), k or !k"
    )


def _key(key: str) -> str:
    match = _KEY.fullmatch(key)
    if match is None or len(match["name"]) > 63 or len(match["prefix"] or "") > 253:
        raise SelectorError(
            f"invalid label key {key!r}: an optional DNS prefix and '/', then at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return key


def _value(value: str) -> str:
    if _VALUE.fullmatch(value) is None or len(value) > 63:
        raise SelectorError(
            f"invalid label value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (or empty)"
        )
    return value
