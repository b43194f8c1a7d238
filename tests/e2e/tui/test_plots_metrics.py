"""The Deployment screen's Metrics tab on the real KWOK cluster, fed by the real metrics
collector scraping a real predictor under real load: the numbers and the plots of latency,
req/s and error % fill in and follow the terminal's size; the autoscaler is shown once one
exists, "no autoscaler" before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Static, TabbedContent

from console.backends.kubernetes.autoscale import autoscale
from console.metrics import MetricsCollector, static_source
from console.model import AutoscaleRequest
from console.tui.screens.deployment import DeploymentScreen
from console.tui.widgets.metrics_plot import MetricsPanel, MetricsPlot
from tests.e2e.tui.deck_pilot import KwokFleet, kwok_fleet_fixture, run, shown_names, wait_for
from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for


def plot(screen: Any, kind: str) -> MetricsPlot:
    return screen.query_one(f"#plot-{kind}", MetricsPlot)  # type: ignore[no-any-return]


def plotted_points(screen: Any, kind: str) -> int:
    return sum(len(xs) for line in plot(screen, kind).lines for xs, _ in line.segments)


def on_screen(screen: Any, widget: Any) -> bool:
    """The widget is displayed and lies inside the terminal."""
    region = widget.region
    size = screen.app.size
    return bool(region.width > 0 and region.height > 0 and region.right <= size.width) and (
        region.bottom <= size.height
    )


def test_metrics_tab_plots_a_served_deployment_and_shows_its_autoscaler(
    kwok_fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
    tmp_path: Path,
) -> None:
    kwok_fleet.deploy("digits-a")
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir))
    predictor.wait_ready()
    served = (kwok_fleet.namespace, "digits-a")
    source = static_source(lambda: [(served, "digits-a-0", predictor.url)], timeout_s=2.0)
    collector = MetricsCollector(source, 6.0, interval_s=0.5).start()
    collectors.append(collector)
    body = {"instances": [tiny_model.images[0].tolist()]}
    load = Load(predictor.url, tiny_model.name, body, 20.0).start()
    try:

        async def scenario() -> None:
            app = kwok_fleet.deck(metrics=collector)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, "the row", lambda: shown_names(app) == ["digits-a"])
                await pilot.press("enter", "5")
                screen = app.screen
                assert isinstance(screen, DeploymentScreen)
                assert screen.query_one(TabbedContent).active == "metrics"
                await wait_for(
                    pilot,
                    "latency and req/s points in the plots",
                    lambda: (
                        plotted_points(screen, "latency") >= 4
                        and plotted_points(screen, "rps") >= 2
                    ),
                )
                latency, rps, errors = (plot(screen, k) for k in ("latency", "rps", "errors"))
                p50, p99 = latency.lines
                assert [line.label for line in (p50, p99)] == ["p50", "p99"]
                assert all(y > 0 for _, ys in p99.segments for y in ys)
                assert max(y for _, ys in rps.lines[0].segments for y in ys) > 0
                assert errors.title_text == "errors %"  # requests were served: a 0 % line
                assert latency.title_text == "latency ms"
                numbers = screen.query_one(MetricsPanel).numbers_text
                assert numbers.startswith("req/s ")
                assert "p99 " in numbers
                assert " ms" in numbers
                assert float(numbers.split()[1]) > 0
                assert "errors 0.00 %" in numbers
                # What the user sees at 80x24: the numbers and all three plots, with titles.
                panel = screen.query_one(MetricsPanel)
                assert on_screen(screen, panel.query_one(".metrics-numbers", Static))
                for each in (latency, rps, errors):
                    assert on_screen(screen, each)
                    assert each.region.height >= 6
                assert "latency ms" in each_plain(latency)
                await wait_for(
                    pilot,
                    "'no autoscaler'",
                    lambda: screen.autoscaler_text.startswith("no autoscaler"),
                )

                # The plots follow the terminal's size.
                narrow = latency.size
                await pilot.resize_terminal(160, 50)
                await wait_for(pilot, "wider plots", lambda: latency.size.width > narrow.width)
                assert latency.size.height > narrow.height
                draws = latency.draws
                await wait_for(pilot, "a redraw after a refresh", lambda: latency.draws > draws)

                # An autoscaler appears: bounds and targets are shown (read in a worker).
                made = autoscale(
                    kwok_fleet.backend.api_client,
                    kwok_fleet.namespace,
                    AutoscaleRequest("digits-a", 1, 3, cpu_percent=80),
                    user="alice",
                )
                assert made.ok, made.message
                await wait_for(
                    pilot,
                    "the autoscaler's bounds",
                    lambda: "1..3 replicas" in screen.autoscaler_text,
                )
                assert "80% CPU" in screen.autoscaler_text
                await wait_for(
                    pilot,
                    "the autoscaler controller's conditions",
                    lambda: "AbleToScale" in screen.autoscaler_text,
                )

                # Another tab: the plots stop redrawing until the Metrics tab is back.
                await pilot.press("1")
                await pilot.pause(0.2)
                hidden_at = latency.draws
                assert collector.wait_for_refreshes(2, timeout=10)
                await pilot.pause(0.3)
                assert latency.draws == hidden_at
                await pilot.press("5")
                await wait_for(pilot, "a redraw when shown", lambda: latency.draws > hidden_at)

        run(scenario)
    finally:
        load.stop()
    assert load.failed == 0


def each_plain(widget: MetricsPlot) -> str:
    """The plot as the terminal shows it, without colours."""
    rendered: Any = widget.render()
    return str(rendered.plain)


def test_metrics_tab_says_no_traffic_for_a_deployment_nobody_calls(
    kwok_fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
) -> None:
    kwok_fleet.deploy("digits-idle")
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir))
    predictor.wait_ready()
    idle = (kwok_fleet.namespace, "digits-idle")
    source = static_source(lambda: [(idle, "digits-idle-0", predictor.url)], timeout_s=2.0)
    collector = MetricsCollector(source, 6.0, interval_s=0.5).start()
    collectors.append(collector)

    async def scenario() -> None:
        app = kwok_fleet.deck(metrics=collector)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "the row", lambda: shown_names(app) == ["digits-idle"])
            await pilot.press("enter", "5")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            await wait_for(
                pilot, "three refreshes drawn", lambda: len(collector.history(idle)) >= 3
            )
            await wait_for(pilot, "a draw", lambda: plot(screen, "latency").draws >= 2)
            assert plot(screen, "latency").title_text == "latency: no traffic"
            assert plot(screen, "errors").title_text == "errors: no traffic"
            assert "latency: no traffic" in each_plain(plot(screen, "latency"))
            assert plotted_points(screen, "latency") == 0  # no "0 ms" points
            numbers = screen.query_one(MetricsPanel).numbers_text
            assert numbers.startswith("no traffic: req/s 0.0  p50 -  p90 -  p99 -  errors -")

    run(scenario)
