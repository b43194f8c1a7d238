"""The Fleet's metric columns fed by the real metrics collector scraping a real predictor under
real load: req/s, p50, p99 and error % replace the dashes; a deployment nobody serves keeps
its dashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.metrics import MetricsCollector, static_source
from console.views.fleet_rows import COLUMN_KEYS
from tests.e2e.tui.deck_pilot import KwokFleet, kwok_fleet_fixture, run, shown_names, wait_for
from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for


def cell(app: Any, name: str, column: str) -> str:
    row = next(r for r in app.fleet.table.view if r.deployment.name == name)
    return str(row.cells[COLUMN_KEYS.index(column)])


def test_metric_columns_show_the_collectors_numbers_live(
    kwok_fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
    tmp_path: Path,
) -> None:
    kwok_fleet.deploy("digits-a", "digits-b")
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
            async with app.run_test(size=(160, 50)) as pilot:
                await wait_for(pilot, "two rows", lambda: len(shown_names(app)) == 2)
                await wait_for(
                    pilot,
                    "req/s and p99 of digits-a",
                    lambda: (
                        cell(app, "digits-a", "rps") not in ("-", "0.0")
                        and cell(app, "digits-a", "p99") != "-"
                    ),
                )
                assert float(cell(app, "digits-a", "rps")) > 0
                assert float(cell(app, "digits-a", "p50")) <= float(cell(app, "digits-a", "p99"))
                assert cell(app, "digits-a", "errors") == "0.00"
                assert [cell(app, "digits-b", c) for c in ("rps", "p50", "p99", "errors")] == [
                    "-"
                ] * 4
                app.fleet.sort_by("rps", descending=True)
                await pilot.pause()
                assert shown_names(app) == ["digits-a", "digits-b"]

        run(scenario)
    finally:
        load.stop()
