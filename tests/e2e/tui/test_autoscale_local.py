"""Issue 20 in the deck, on the local runtime: while load through the gateway makes the agent
scale a deployment from 1 to 3 real predictor processes and back, the Deployment screen's
Metrics tab shows the autoscaler (the metric against its target, current and desired) and its
decisions with their reasons, and the req/s plot carries the replicas that answered beside the
rate. The agent evaluates every second and the scale-down window is 4 s, so the test waits
seconds; it asserts on what is shown, never on how long it took."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.backends.local import LocalBackend
from console.local.__main__ import SYNC_ENVIRONMENT
from console.metrics import MetricsCollector, direct_source
from console.model import AutoscaleRequest
from console.tui.app import DeckApp
from console.tui.screens.deployment import DeploymentScreen
from console.tui.widgets.metrics_plot import MetricsPlot
from tests.e2e.tui.deck_pilot import run, shown_names, wait_for
from tests.integration.local.fixtures import (
    DigitsStore,
    digits_store,
    local_backend,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.support.gateway_load import LoadGenerator, deploy_available

__all__ = ["digits_store"]

NAME = "digits"


@pytest.fixture
def backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_store: DigitsStore
) -> Iterator[LocalBackend]:
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    monkeypatch.setenv(SYNC_ENVIRONMENT, "1")  # the agent's autoscalers evaluate every second
    profile = write_local_profile(digits_store.root)
    try:
        with local_backend(profile) as backend:
            yield backend
    finally:
        stop_every_agent(profile)


def most_replicas_plotted(screen: DeploymentScreen) -> float:
    plot = screen.query_one("#plot-rps", MetricsPlot)
    counts = [
        y for line in plot.lines if line.label == "replicas" for _, ys in line.segments for y in ys
    ]
    return max(counts, default=0.0)


def newest_decision(text: str) -> str:
    """The first line under "last scaling decisions:" ("" before there is one)."""
    lines = text.splitlines()
    if "  last scaling decisions:" not in lines:
        return ""
    at = lines.index("  last scaling decisions:") + 1
    return lines[at] if at < len(lines) else ""


def test_the_metrics_tab_shows_the_replicas_and_the_decisions_as_load_scales_a_deployment(
    backend: LocalBackend, digits_store: DigitsStore, tmp_path: Path
) -> None:
    deploy_available(backend, NAME)
    made = backend.autoscale(
        "default", AutoscaleRequest(NAME, 1, 3, rps_per_pod=5.0, scale_down_seconds=4)
    )
    assert made.ok, made.message
    collector = MetricsCollector(direct_source(backend), 3.0, interval_s=0.5).start()
    found: dict[str, Any] = {}

    async def scenario() -> None:
        app = DeckApp(backend, backend.profile, user="alice", metrics=collector)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, "the row", lambda: shown_names(app) == [NAME])
            await pilot.press("enter", "5")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            await wait_for(
                pilot, "the autoscaler", lambda: "1..3 replicas" in screen.autoscaler_text
            )
            found["idle"] = screen.autoscaler_text
            with LoadGenerator(backend, NAME, digits_store.images, threads=3) as heavy:
                await wait_for(
                    pilot,
                    "a scale-up to 3 on the Metrics tab",
                    lambda: "→ 3" in screen.autoscaler_text,
                    within=180,
                )
                found["up"] = screen.autoscaler_text
                await wait_for(
                    pilot,
                    "3 replicas plotted beside the req/s",
                    lambda: most_replicas_plotted(screen) == 3,
                    within=60,
                )
            found["heavy_failures"] = heavy.failures
            with LoadGenerator(backend, NAME, digits_store.images, threads=1, pause=0.3):
                await wait_for(
                    pilot,
                    "the scale-down to 1 on the Metrics tab",
                    lambda: " → 1  " in newest_decision(screen.autoscaler_text),
                    within=180,
                )
                found["down"] = screen.autoscaler_text

    try:
        run(scenario)
    finally:
        collector.stop()
    assert "1..3 replicas at 5 req/s per pod" in found["idle"]
    assert "(local runtime)" in found["idle"]
    up = found["up"]
    assert "last scaling decisions:" in up
    assert "req/s per replica " in up
    assert " > target 5 (x" in up
    assert "now " in up
    assert found["heavy_failures"] == []
    newest = newest_decision(found["down"])
    assert " → 1  " in newest
    assert " < target 5 (x" in newest
