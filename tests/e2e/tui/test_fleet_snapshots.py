"""What the Fleet screen looks like at 80×24 (a bastion's terminal) and 160×50, on a fixed
fleet with time frozen: marks, a filter, the sort arrow, status colours, the status bar."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.profile import load_profile
from console.tui.app import DeckApp
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.fixed_fleet import NOW, FixedFleet, fixed_deployments


def fixed_deck(*, remember: bool = False) -> DeckApp:
    """The fixed fleet at a frozen time; ``remember``: with the user's keymap and theme."""
    return DeckApp(
        FixedFleet(fixed_deployments()),
        load_profile("kwok"),
        context="kwok-admin",
        user="alice",
        clock=lambda: NOW,
        live=False,
        remember=remember,
    )


async def loaded(pilot: Pilot[Any]) -> None:
    app: DeckApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)


async def marked_and_sorted(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("j", "space", "space", "o", "o", "o", "o", "o")  # two marks; sort by status


async def filtered(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("slash", "i", "r", "i", "s")


def test_fleet_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=loaded)


def test_fleet_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(160, 50), run_before=loaded)


def test_fleet_marked_and_sorted_by_status_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(160, 50), run_before=marked_and_sorted)


def test_fleet_filtered_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=filtered)


async def wide(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("ctrl+w")


async def wide_scrolled_right(pilot: Pilot[Any]) -> None:
    await wide(pilot)
    await pilot.press(*["right"] * 30)  # NAME stays put, the rest moves


def test_fleet_wide_view_at_80x24_every_column(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=wide)


def test_fleet_wide_view_scrolled_sideways_keeps_the_name_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=wide_scrolled_right)
