"""The Fleet overview (``:top``, ``:overview``, ``t``) on the real KWOK cluster, fed by the real
metrics collector scraping real predictors under real load: fleet-wide req/s and latency,
plots, the busiest and slowest deployments; usable at 80x24. And, with a fleet of more than
100 deployments, the Fleet screen has only the rows on screen scraped while the overview has
the whole fleet scraped."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Static

from console.metrics import MetricsCollector, static_source
from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.widgets.metrics_plot import MetricsPanel, MetricsPlot
from tests.e2e.tui.deck_pilot import (
    KwokFleet,
    kwok_fleet_fixture,
    run,
    shown_names,
    type_text,
    wait_for,
)
from tests.infra.k8s_fixtures import poll_until
from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for


def table_rows(screen: Any, table_id: str) -> list[list[str]]:
    table = screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def visible(screen: Any, widget: Any) -> bool:
    region, size = widget.region, screen.app.size
    return bool(region.width > 0 and region.height > 0 and region.bottom <= size.height)


def test_overview_shows_fleet_traffic_and_the_top_deployments_at_80x24(
    kwok_fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
) -> None:
    kwok_fleet.deploy("digits-busy", "digits-calm", "digits-idle")
    busy = start_predictor("--model-uri", str(tiny_model.version_dir))
    calm = start_predictor("--model-uri", str(tiny_model.version_dir))
    for predictor in (busy, calm):
        predictor.wait_ready()
    ns = kwok_fleet.namespace
    targets = [
        ((ns, "digits-busy"), "digits-busy-0", busy.url),
        ((ns, "digits-calm"), "digits-calm-0", calm.url),
    ]
    collector = MetricsCollector(
        static_source(lambda: targets, timeout_s=2.0), 6.0, interval_s=0.5
    ).start()
    collectors.append(collector)
    body = {"instances": [tiny_model.images[0].tolist()]}
    loads = [
        Load(busy.url, tiny_model.name, body, 24.0).start(),
        Load(calm.url, tiny_model.name, body, 6.0).start(),
    ]
    try:

        async def scenario() -> None:
            app = kwok_fleet.deck(metrics=collector)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, "three rows", lambda: len(shown_names(app)) == 3)
                await pilot.press("colon")
                await type_text(pilot, "top")
                await pilot.press("enter")
                screen = app.screen
                assert isinstance(screen, OverviewScreen)

                def busiest() -> list[list[str]]:
                    return table_rows(screen, "#overview-top-rps")

                await wait_for(
                    pilot,
                    "both served deployments, busiest first",
                    lambda: (
                        [r[0] for r in busiest()] == [f"{ns}/digits-busy", f"{ns}/digits-calm"]
                        and float(busiest()[0][1]) > 2 * float(busiest()[1][1])
                    ),
                )
                fleet = collector.fleet()
                assert fleet is not None
                assert fleet.requests_per_s > 0
                numbers = screen.query_one(MetricsPanel).numbers_text
                assert numbers.startswith("req/s ")
                assert float(numbers.split()[1]) > 0
                fleet_text = str(screen.query_one("#overview-fleet", Static).render())
                assert fleet_text.startswith("fleet: 2 deployments measured, 2 pods")
                slowest = table_rows(screen, "#overview-top-p99")
                assert {r[0] for r in slowest} == {f"{ns}/digits-busy", f"{ns}/digits-calm"}
                p99s = [float(r[2]) for r in slowest]
                assert p99s == sorted(p99s, reverse=True)  # slowest first
                await wait_for(
                    pilot,
                    "fleet plots with points",
                    lambda: all(plot.has_data for plot in screen.query(MetricsPlot)),
                )
                # At 80x24: the fleet line, the numbers, the three plots and both tables show.
                for widget in (
                    screen.query_one("#overview-fleet"),
                    screen.query_one(".metrics-numbers"),
                    *screen.query(MetricsPlot),
                    screen.query_one("#overview-top-rps"),
                    screen.query_one("#overview-top-p99"),
                ):
                    assert visible(screen, widget), widget
                assert all(p.region.height >= 5 for p in screen.query(MetricsPlot))
                assert screen.query_one("#overview-top-rps", DataTable).region.height >= 4

                # enter opens the highlighted deployment; esc comes back to the overview.
                await pilot.press("enter")
                detail: Any = app.screen
                assert isinstance(detail, DeploymentScreen)
                assert detail.deployment_name == "digits-busy"
                await pilot.press("escape")
                back: Any = app.screen
                assert back is screen
                draws = screen.draws
                await wait_for(pilot, "redraws go on", lambda: screen.draws > draws)

                # Back on the Fleet screen the overview stops drawing; t opens it again.
                await pilot.press("escape")
                assert isinstance(app.screen, FleetScreen)
                await pilot.press("t")
                reopened: Any = app.screen
                assert isinstance(reopened, OverviewScreen)

        run(scenario)
    finally:
        for load in loads:
            load.stop()
    assert all(load.failed == 0 for load in loads)


def test_a_large_fleet_scrapes_the_rows_on_screen_and_the_overview_all(
    kwok_fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
) -> None:
    names = [f"digits-{i:03d}" for i in range(105)]
    kwok_fleet.deploy(*names)
    # Settled first: a deployment in a rollout is scraped wherever it is in the table.
    poll_until("105 available", lambda: all(kwok_fleet.available(n) for n in names), 120)
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir))
    predictor.wait_ready()
    ns = kwok_fleet.namespace
    # Every deployment's pod answers (the same predictor): what is scraped is what is wanted.
    targets = [((ns, name), f"{name}-0", predictor.url) for name in names]
    collector = MetricsCollector(
        static_source(lambda: targets, timeout_s=2.0), 6.0, interval_s=0.3
    ).start()
    collectors.append(collector)

    def measured_last_round() -> int:
        fleet = collector.fleet()
        return fleet.deployments if fleet is not None else -1

    def measured_now() -> frozenset[tuple[str, str]]:
        """The deployments the last refresh scraped (the others keep older numbers)."""
        fleet = collector.fleet()
        at = fleet.at if fleet is not None else None
        return frozenset(key for key, m in collector.snapshot().items() if m.at == at)

    async def scenario() -> None:
        app = kwok_fleet.deck(metrics=collector)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "105 rows", lambda: len(shown_names(app)) == 105)
            table = app.fleet.table

            def on_screen() -> int:
                # Read when compared: the table fits 80 columns once its widths are known, and
                # the horizontal scrollbar's line then goes back to the rows.
                return table.scrollable_content_region.height - 1

            await wait_for(
                pilot,
                "only the rows on screen measured",
                lambda: (
                    measured_last_round() == on_screen()
                    and app.fleet.wanted[""]
                    == frozenset((ns, name) for name in names[: on_screen()])
                ),
            )
            await wait_for(
                pilot,
                "the top rows scraped, the last one not",
                lambda: measured_now() == app.fleet.wanted[""],
            )

            await pilot.press("G")  # the last page
            await wait_for(
                pilot,
                "the last row measured after scrolling to it",
                lambda: (ns, names[-1]) in measured_now(),
            )
            assert app.fleet.wanted[""] is not None
            assert (ns, names[0]) not in app.fleet.wanted[""]

            await pilot.press("t")  # the overview is about the whole fleet
            await wait_for(pilot, "every deployment measured", lambda: measured_last_round() == 105)
            await pilot.press("escape")
            await wait_for(
                pilot,
                "back to the rows on screen",
                lambda: measured_last_round() == on_screen(),
            )

    run(scenario)


def test_refreshes_the_ui_has_not_caught_up_with_are_one_redraw(kwok_fleet: KwokFleet) -> None:
    collector = MetricsCollector(static_source(lambda: []), 6.0, interval_s=60.0)

    async def scenario() -> None:
        app = kwok_fleet.deck(metrics=collector)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
            await pilot.press("t")
            overview = app.screen
            assert isinstance(overview, OverviewScreen)
            await pilot.pause()
            drawn = overview.draws
            for _ in range(10):  # the UI thread is busy here: ten rounds, nothing handled
                collector.refresh()
            await pilot.pause(0.2)
            assert overview.draws == drawn + 1
            collector.refresh()
            await pilot.pause(0.2)
            assert overview.draws == drawn + 2

            # Covered by another screen, refreshes draw nothing; shown again, it catches up once.
            # (Under a modal such as the help it is still visible, and still drawn.)
            await app.push_screen(DeploymentScreen(app.deck, kwok_fleet.namespace, "elsewhere"))
            for _ in range(3):
                collector.refresh()
            await pilot.pause(0.2)
            assert overview.draws == drawn + 2
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert overview.draws == drawn + 3
            assert isinstance(app.screen, OverviewScreen)

    try:
        run(scenario)
    finally:
        collector.stop()
