"""What the Deployment screen and the action dialog look like at 80×24 and 160×50, on a fixed
fleet with time frozen."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.tui.app import DeckApp
from console.tui.screens.deployment import DeploymentScreen
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.test_fleet_snapshots import fixed_deck, loaded


async def detail(pilot: Pilot[Any]) -> None:
    app: DeckApp = pilot.app  # type: ignore[assignment]
    await loaded(pilot)
    await pilot.press("j", "j", "j", "d")  # the fourth row
    screen = app.screen
    assert isinstance(screen, DeploymentScreen)
    await wait_for(pilot, "the detail", lambda: screen.loads > 0)


async def detail_pods(pilot: Pilot[Any]) -> None:
    await detail(pilot)
    await pilot.press("2")


async def scale_dialog(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("space", "space", "space", "s")


def test_deployment_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=detail)


def test_deployment_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(160, 50), run_before=detail)


def test_deployment_pods_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=detail_pods)


def test_scale_dialog_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(fixed_deck(), terminal_size=(80, 24), run_before=scale_dialog)
