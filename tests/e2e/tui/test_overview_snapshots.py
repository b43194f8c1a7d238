"""What the Fleet overview looks like at 80x24, on a fixed fleet and a fixed metrics history
(two minutes of refreshes with a latency bump and a quiet spell), time frozen.

The history stands in for the collector only here: a snapshot must not depend on what a
predictor happens to measure. Every behaviour test feeds the deck the real collector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from textual.pilot import Pilot

from console.metrics import DeploymentMetrics, FleetMetrics, LatestNumbers
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.screens.overview import OverviewScreen
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.fixed_fleet import NOW, FixedFleet, fixed_deployments

Key = tuple[str, str]
START = NOW.timestamp() - 120.0


def numbers(
    rps: float, p50: float | None, p99: float | None, errors: float | None
) -> LatestNumbers:
    p90 = None if p50 is None or p99 is None else (p50 + p99) / 2
    batch = None if rps == 0 else 1.0
    return LatestNumbers(rps, errors, p50, p90, p99, batch, 0.0, None)


def fleet_point(i: int) -> FleetMetrics:
    quiet = 40 <= i < 46  # no requests: no latency, no error rate
    rps = 0.0 if quiet else 80.0 + 10.0 * (i % 7)
    p50 = None if quiet else 4.0 + (i % 5) * 0.3
    p99 = None if quiet else (30.0 if 20 <= i < 30 else 12.0) + (i % 3)
    errors = None if quiet else (2.5 if 25 <= i < 28 else 0.0)
    return FleetMetrics(START + 2.0 * i, numbers(rps, p50, p99, errors), 4, 9, 0)


def deployment(name: str, rps: float, p50: float | None, p99: float | None) -> DeploymentMetrics:
    errors = None if rps == 0 else 0.0
    return DeploymentMetrics("models", name, NOW.timestamp(), numbers(rps, p50, p99, errors), 2, 0)


class FixedMetrics:
    """A fixed history in memory, shaped like the collector's reads."""

    def __init__(self) -> None:
        self._fleet = [fleet_point(i) for i in range(61)]
        self._latest = {
            m.key: m
            for m in (
                deployment("digits-004", 52.0, 3.1, 9.8),
                deployment("iris-001", 30.5, 5.2, 41.0),
                deployment("mnist-cnn-002", 12.0, 18.0, 64.5),
                deployment("sentiment-007", 0.0, None, None),
            )
        }

    def snapshot(self) -> Mapping[Key, DeploymentMetrics]:
        return dict(self._latest)

    def subscribe(self, on_refresh: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def history(self, key: Key) -> Sequence[DeploymentMetrics]:
        """The fleet's shape for every deployment (what the Metrics tab draws)."""
        if key not in self._latest:
            return []
        return [
            DeploymentMetrics(key[0], key[1], point.at, point.numbers, 2, 0)
            for point in self._fleet
        ]

    def fleet(self) -> FleetMetrics:
        return self._fleet[-1]

    def fleet_history(self) -> Sequence[FleetMetrics]:
        return list(self._fleet)


def overview_deck() -> DeckApp:
    return DeckApp(
        FixedFleet(fixed_deployments()),
        load_profile("kwok"),
        context="kwok-admin",
        user="alice",
        metrics=FixedMetrics(),
        clock=lambda: NOW,
        live=False,
    )


async def overview(pilot: Pilot[Any]) -> None:
    app: DeckApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
    await pilot.press("t")
    screen = app.screen
    assert isinstance(screen, OverviewScreen)
    await wait_for(pilot, "the overview drawn", lambda: screen.draws > 0)
    await pilot.pause()


def test_overview_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(overview_deck(), terminal_size=(80, 24), run_before=overview)
