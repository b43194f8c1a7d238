"""What the Deployment screen's Metrics tab looks like at 80x24 on a fixed fleet and a fixed
metrics history (a latency bump, an error spike, a quiet gap), time frozen."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.tui.app import DeckApp
from console.tui.screens.deployment import DeploymentScreen
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.test_overview_snapshots import overview_deck


async def metrics_tab(pilot: Pilot[Any]) -> None:
    app: DeckApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
    await pilot.press("j", "d", "5")  # models/digits-004, its Metrics tab
    screen = app.screen
    assert isinstance(screen, DeploymentScreen)
    await wait_for(pilot, "the detail and the plots", lambda: screen.loads and screen.metric_draws)
    await wait_for(pilot, "the autoscaler line", lambda: screen.autoscaler_text)
    await pilot.pause()


def test_deployment_metrics_tab_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(overview_deck(), terminal_size=(80, 24), run_before=metrics_tab)
