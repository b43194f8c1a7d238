"""Label selectors as kubectl -l takes them: Kubernetes' grammar, its rules for keys and values."""

from __future__ import annotations

import pytest

from console.selectors import SelectorError, parse_selector

LABELS = {"fleetdeck.io/model": "digits", "tier": "gold", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),
        ("", True),
        ("fleetdeck.io/model=digits", True),
        ("fleetdeck.io/model==digits", True),
        ("fleetdeck.io/model = digits", True),
        ("fleetdeck.io/model=photos", False),
        ("tier!=gold", False),
        ("canary!=yes", True),  # an absent label is not equal to anything
        ("empty=", True),
        ("tier", True),
        ("!tier", False),
        ("!canary", True),
        ("fleetdeck.io/model=digits,tier=gold", True),
        ("fleetdeck.io/model=digits,tier=x", False),
    ],
)
def test_equality_and_existence_terms_all_must_hold(selector: str | None, matches: bool) -> None:
    assert parse_selector(selector)(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("tier in (gold,silver)", True),
        ("tier in (silver)", False),
        ("tier in ( gold , silver )", True),
        ("tier notin (gold)", False),
        ("tier notin (bronze, silver)", True),
        ("canary notin (yes)", True),  # absent: not in the set
        ("canary in (yes)", False),
        ("tier in (gold),fleetdeck.io/model notin (photos),!canary", True),
        ("tier in (silver,gold),fleetdeck.io/model=photos", False),
    ],
)
def test_set_terms_hold_as_kubernetes_defines_them(selector: str, matches: bool) -> None:
    assert parse_selector(selector)(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "says"),
    [
        ("a,,b", "empty requirement"),
        ("=x", "cannot read"),
        ("tier in (gold", "unclosed"),
        ("tier in gold)", "unbalanced"),
        ("tier in ((gold))", "nested"),
        ("tier in gold", "cannot read"),
        ("tier > 2", "cannot read"),
        ("-tier=gold", "invalid label key"),
        ("Example.com/tier=gold", "invalid label key"),
        ("tier=gold!", "cannot read"),
        ("tier=" + "g" * 64, "invalid label value"),
        ("tier in (gold,-x)", "invalid label value"),
        ("a/b/c=x", "invalid label key"),
    ],
)
def test_what_the_api_server_would_refuse_is_refused_saying_what_is_wrong(
    selector: str, says: str
) -> None:
    with pytest.raises(SelectorError, match=says):
        parse_selector(selector)
