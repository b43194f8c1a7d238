"""Label selectors as kubectl -l takes them."""

from __future__ import annotations

import pytest

from console.selectors import SelectorError, parse_selector

LABELS = {"fleetdeck.io/model": "digits", "tier": "gold"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),
        ("", True),
        ("fleetdeck.io/model=digits", True),
        ("fleetdeck.io/model==digits", True),
        ("fleetdeck.io/model=photos", False),
        ("tier!=gold", False),
        ("tier", True),
        ("!tier", False),
        ("!canary", True),
        ("fleetdeck.io/model=digits,tier=gold", True),
        ("fleetdeck.io/model=digits,tier=x", False),
    ],
)
def test_equality_and_existence_terms_all_must_hold(selector: str | None, matches: bool) -> None:
    assert parse_selector(selector)(LABELS) is matches


@pytest.mark.parametrize("selector", ["tier in (gold)", "a,,b", "=x"])
def test_unsupported_or_malformed_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(selector)
