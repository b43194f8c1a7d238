"""The Batch screen's live numbers: a target served by a real predictor under real load, scraped
by the real metrics collector, shows its req/s, p99 and error % during the bake next to the
baseline its gate compares against (taken before its wave); a target nobody serves shows ``-``.
The rollout itself runs on KWOK, so the numbers stay healthy and the gates pass."""

from __future__ import annotations

import re
from typing import Any

from textual.widgets import DataTable

from console.batch.journal import BatchState
from console.metrics import MetricsCollector, static_source
from console.tui.screens.batch import BatchScreen
from tests.e2e.tui.deck_pilot import KwokFleet, run, wait_for
from tests.e2e.tui.test_batch_kwok import (
    batch_screen,
    fleet_fixture,
    open_plan_dialog,
    target_states,
    waves,
)
from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel

fleet = fleet_fixture  # the fixture, by the name the tests ask for
LIVE = re.compile(r"^\d+ req/s  p99 \d+/\d+ ms  err 0\.0/0\.0 %$")


def live_cell(screen: BatchScreen, target: str) -> str:
    """The target's "live · gate now/base" cell, as shown."""
    table: DataTable[Any] = screen.query_one("#batch-targets", DataTable)
    for index in range(table.row_count):
        row = table.get_row_at(index)
        if str(row[0]) == target:
            return str(row[3])
    raise AssertionError(f"{target} is not in the Batch screen's table")


def test_the_bake_shows_a_served_targets_live_numbers_against_its_baseline(
    fleet: KwokFleet,
    tiny_model: TinyModel,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
) -> None:
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir))
    predictor.wait_ready()
    served = (fleet.namespace, "m-00")
    source = static_source(lambda: [(served, "m-00-0", predictor.url)], timeout_s=2.0)
    collector = MetricsCollector(source, 3.0, interval_s=0.5).start()
    collectors.append(collector)
    body = {"instances": [tiny_model.images[0].tolist()]}
    load = Load(predictor.url, tiny_model.name, body, 20.0).start()
    try:
        collector.wait_for_refreshes(8, timeout=30)  # a window with traffic before the wave

        async def scenario() -> None:
            app = fleet.deck(metrics=collector)
            async with app.run_test(size=(120, 40)) as pilot:
                await open_plan_dialog(
                    app,
                    pilot,
                    waves="1,100%",
                    bake="6",
                    **{"p99-ratio": "50", "error-percent": "50"},  # numbers shown, never failed
                )
                await pilot.press("enter")
                screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
                first = f"{fleet.namespace}/m-00"

                def numbers_shown() -> str | None:
                    cell = live_cell(screen, first)
                    return cell if LIVE.match(cell) else None

                cell = await wait_for(pilot, "m-00's live numbers and baseline", numbers_shown)
                assert not cell.startswith("0 req/s"), cell
                assert "wave 1 (1): running" in waves(screen)  # m-00 is the canary, baking
                await wait_for(
                    pilot,
                    "the batch to finish",
                    lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                    within=120,
                )
                await pilot.pause(0.5)
                assert set(target_states(screen).values()) == {"ok"}
                assert live_cell(screen, f"{fleet.namespace}/m-01") == "-"

        run(scenario)
    finally:
        load.stop()
