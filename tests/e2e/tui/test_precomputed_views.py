"""Precomputed serving as the deck shows it, on real components: a scoring job launched on the
local runtime lists under its own kind with its progress read from its JSON lines; the Models
screen shows the table the job published (rows and size) on the version that carries it; the
Fleet's HIT% column shows the real collector's hit ratio of a real predictor answering key
requests, and ``-`` for a predictor without a table; so does the Deployment screen's Metrics
tab."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from console.backends.local import LocalBackend
from console.metrics import MetricsCollector, static_source
from console.model import JobPhase, ScoringRequest
from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.models import COLUMNS as MODEL_COLUMNS
from console.tui.screens.models import ModelsScreen, size_text
from console.tui.screens.training import COLUMNS as JOB_COLUMNS
from console.tui.screens.training import TrainingScreen
from console.tui.widgets.metrics_plot import MetricsPanel
from console.tui.widgets.release import DeployDialog
from console.views.epoch_log import format_scored, parse_progress
from console.views.fleet_rows import COLUMN_KEYS
from serving.store import ModelStore
from tests.e2e.tui.deck_pilot import KwokFleet, kwok_fleet_fixture, shown_names
from tests.e2e.tui.screen_host import ScreenHost, run, wait_for
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local import fixtures
from tests.integration.local.test_score import keyed_inputs
from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.predictor import ROOT

digits_store = fixtures.digits_store  # the session's trained store
kwok_fleet = kwok_fleet_fixture
SAMPLE_KEYS = 1797  # the digits sample data set, every example keyed


@dataclass(frozen=True)
class ScoredStore:
    root: Path  # a private copy of the trained store; digits version 1 carries the table
    log: list[str]  # what ``python -m training.score`` printed


@pytest.fixture(scope="module")
def scored(
    digits_store: fixtures.DigitsStore, tmp_path_factory: pytest.TempPathFactory
) -> ScoredStore:
    root = tmp_path_factory.mktemp("precomputed-views") / "store"
    shutil.copytree(digits_store.root, root)
    done = subprocess.run(
        [
            sys.executable, "-m", "training.score", "--model", "digits", "--version", "1",
            "--input", str(digits_store.data), "--store", str(root), "--batch-size", "256",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return ScoredStore(root, done.stdout.splitlines())


@pytest.fixture
def local(
    digits_store: fixtures.DigitsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalBackend]:
    fixtures.use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = fixtures.write_local_profile(digits_store.root)
    try:
        with fixtures.local_backend(profile) as backend:
            yield backend
    finally:
        fixtures.stop_every_agent(profile)


def cells(table: DataTable[str], columns: tuple[tuple[str, int], ...]) -> list[dict[str, str]]:
    titles = [title for title, _ in columns]
    return [
        dict(zip(titles, (str(c) for c in table.get_row_at(i)), strict=True))
        for i in range(table.row_count)
    ]


# -- the scoring job's log, as the Training screen reads it ---------------------------------------


def test_a_scoring_logs_real_lines_read_as_done_of_total_then_published(
    scored: ScoredStore,
) -> None:
    finished = parse_progress(scored.log)
    assert finished.scored is not None
    assert (finished.scored.done, finished.scored.total) == (SAMPLE_KEYS, SAMPLE_KEYS)
    assert finished.published is not None
    assert (finished.published.model, finished.published.version) == ("digits", 1)
    assert finished.published.rows == SAMPLE_KEYS
    assert format_scored(finished) == "1,797/1,797 published"
    assert finished.epochs == ()  # nothing a training job's column would show

    # Cut after the last progress line: a job still publishing shows its count and rate.
    last_progress = max(i for i, line in enumerate(scored.log) if '"progress"' in line)
    running = parse_progress(scored.log[: last_progress + 1])
    assert running.published is None
    assert running.scored is not None
    assert running.scored.examples_per_s
    assert format_scored(running).startswith("1,797/1,797 ")
    assert format_scored(running).endswith(" ex/s")

    # Cut after the start line: the total is known, nothing scored yet.
    start = next(i for i, line in enumerate(scored.log) if line.startswith('{"event": "start"'))
    assert format_scored(parse_progress(scored.log[: start + 1])) == "0/1,797"


# -- the Models screen on the scored store --------------------------------------------------------


def test_the_models_screen_shows_the_table_a_version_carries_with_rows_and_size(
    scored: ScoredStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixtures.use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = fixtures.write_local_profile(scored.root)
    manifest = ModelStore(str(scored.root)).manifest("digits", 1)
    assert manifest.precomputed is not None
    table_bytes = sum(
        e.size
        for path, e in manifest.files.items()
        if path.startswith(manifest.precomputed.path + "/")
    )
    model_bytes = sum(e.size for e in manifest.files.values()) - table_bytes

    async def scenario() -> None:
        with fixtures.local_backend(profile) as backend:
            host = ScreenHost(lambda: ModelsScreen(backend, profile))
            async with host.run_test(size=(200, 40)) as pilot:
                screen = host.screen
                assert isinstance(screen, ModelsScreen)
                table = screen.query_one(DataTable)
                await wait_for(pilot, "both versions", lambda: table.row_count == 2)
                shown = {int(r["VERSION"]): r for r in cells(table, MODEL_COLUMNS)}
                assert shown[1]["TABLE"] == f"1,797 rows {size_text(table_bytes)}"
                assert shown[2]["TABLE"] == "-"
                # SIZE stays the model's own files; the table has its column.
                assert shown[1]["SIZE"] == size_text(model_bytes) == shown[2]["SIZE"]

    try:
        run(scenario)
    finally:
        fixtures.stop_every_agent(profile)


# -- the local runtime: Training then Models ------------------------------------------------------


def test_a_scoring_job_lists_as_score_with_its_progress_and_its_table_shows_on_models(
    local: LocalBackend, digits_store: fixtures.DigitsStore, tmp_path: Path
) -> None:
    version = digits_store.publish_copy()
    inputs = keyed_inputs(digits_store, tmp_path / "photos", 300)
    result = local.score(ScoringRequest("digits", version, str(inputs), batch_size=128))
    assert result.ok, result.message
    name = result.target.split("/", 1)[1]
    poll_until(
        "the scoring job Succeeded",
        lambda: any(j.name == name and j.phase is JobPhase.SUCCEEDED for j in local.jobs()),
        timeout=120,
    )
    profile = local.profile

    async def training() -> None:
        host = ScreenHost(lambda: TrainingScreen(local, profile, live=False))
        async with host.run_test(size=(200, 40)) as pilot:
            screen = host.screen
            assert isinstance(screen, TrainingScreen)
            table = screen.query_one(DataTable)

            def progress_shown() -> bool:
                unread = {key: why for key, why in screen.log_errors.items() if why}
                assert not unread, f"the Training screen cannot read the job's log: {unread}"
                rows = cells(table, JOB_COLUMNS)
                return any(r["NAME"] == name and r["PROGRESS"] != "-" for r in rows)

            await wait_for(pilot, "the scoring job's progress", progress_shown)
            (row,) = [r for r in cells(table, JOB_COLUMNS) if r["NAME"] == name]
            assert (row["KIND"], row["PHASE"]) == ("score", "Succeeded")
            assert row["PROGRESS"] == "300/300 published"
            info = str(screen.query_one("#training-info").render())
            assert f"published a table of 300 keys into digits v{version}" in info
            await pilot.press("d")  # deploy the version that now carries the table
            dialog = host.screen
            assert isinstance(dialog, DeployDialog)
            assert (dialog.model, dialog.version) == ("digits", version)

    async def models() -> None:
        host = ScreenHost(lambda: ModelsScreen(local, profile))
        async with host.run_test(size=(200, 40)) as pilot:
            screen = host.screen
            assert isinstance(screen, ModelsScreen)
            table = screen.query_one(DataTable)
            await wait_for(pilot, "the store's versions", lambda: table.row_count >= 3)
            shown = {int(r["VERSION"]): r["TABLE"] for r in cells(table, MODEL_COLUMNS)}
            manifest = ModelStore(str(digits_store.root)).manifest("digits", version)
            assert manifest.precomputed is not None
            table_bytes = sum(
                e.size
                for path, e in manifest.files.items()
                if path.startswith(manifest.precomputed.path + "/")
            )
            assert shown[version].startswith("300 rows ")
            assert shown[version].endswith(" KiB") or shown[version].endswith(" B")
            assert table_bytes > 0
            assert shown[1] == shown[2] == "-"  # versions without a table
            for _ in range(table.row_count):  # the detail line of the scored version
                if screen.cursor_row is not None and screen.cursor_row.version == version:
                    break
                await pilot.press("j")
            detail = str(screen.query_one("#models-detail").render())
            assert f"precomputed: {shown[version]}, the keys of {inputs}" in detail
            assert f"scored by {name}" in detail

    run(models)  # first: it does not depend on reading the job's log
    run(training)


# -- the Fleet's HIT% from a real collector -------------------------------------------------------


def fleet_cell(app: Any, name: str, column: str) -> str:
    row = next(r for r in app.fleet.table.view if r.deployment.name == name)
    return str(row.cells[COLUMN_KEYS.index(column)])


def test_the_hit_ratio_shows_on_fleet_and_deployment_and_a_dash_without_a_table(
    kwok_fleet: KwokFleet,
    scored: ScoredStore,
    digits_store: fixtures.DigitsStore,
    start_predictor: StartPredictor,
    collectors: list[MetricsCollector],
    tmp_path: Path,
) -> None:
    kwok_fleet.deploy("digits-keys", "digits-plain")
    with_table = start_predictor("--model-uri", str(scored.root / "digits" / "1"))
    # Its own cache: the same model and version number, without the table.
    plain = start_predictor(
        "--model-uri",
        str(digits_store.root / "digits" / "1"),
        "--cache-dir",
        str(tmp_path / "plain-cache"),
    )
    with_table.wait_ready()
    plain.wait_ready()
    namespace = kwok_fleet.namespace
    targets = [
        ((namespace, "digits-keys"), "digits-keys-0", with_table.url),
        ((namespace, "digits-plain"), "digits-plain-0", plain.url),
    ]
    collector = MetricsCollector(static_source(lambda: targets, timeout_s=2.0), 6.0, interval_s=0.5)
    collectors.append(collector.start())
    keys = {"keys": ["digit-00000", "digit-00001", "digit-00002"]}
    tensors = {"instances": [digits_store.images[0].tolist()]}
    loads = [
        Load(with_table.url, "digits", keys, 20.0).start(),
        Load(plain.url, "digits", tensors, 20.0).start(),
    ]
    try:

        async def scenario() -> None:
            app = kwok_fleet.deck(metrics=collector)
            async with app.run_test(size=(180, 50)) as pilot:
                await wait_for(pilot, "two rows", lambda: len(shown_names(app)) == 2)
                await wait_for(
                    pilot,
                    "req/s and hit% of both",
                    lambda: (
                        all(
                            fleet_cell(app, name, "rps") not in ("-", "0.0")
                            for name in ("digits-keys", "digits-plain")
                        )
                        and fleet_cell(app, "digits-keys", "hit") != "-"
                    ),
                )
                assert fleet_cell(app, "digits-keys", "hit") == "100"
                assert fleet_cell(app, "digits-plain", "hit") == "-"
                header = app.fleet.table.render_line(0).text
                assert header.index("REQ/S") < header.index("HIT%") < header.index("P50")

                # The Deployment screen's Metrics tab says it too, for the one with a table.
                assert shown_names(app) == ["digits-keys", "digits-plain"]
                await pilot.press("enter", "5")
                screen = app.screen
                assert isinstance(screen, DeploymentScreen)
                panel = screen.query_one(MetricsPanel)
                await wait_for(
                    pilot, "the numbers line", lambda: panel.numbers_text.startswith("req/s ")
                )
                assert "precomputed hits 100 %" in panel.numbers_text
                await pilot.press("escape", "j", "enter", "5")
                screen = app.screen
                assert isinstance(screen, DeploymentScreen)
                assert screen.deployment_name == "digits-plain"
                panel = screen.query_one(MetricsPanel)
                await wait_for(
                    pilot, "the numbers line", lambda: panel.numbers_text.startswith("req/s ")
                )
                assert "precomputed" not in panel.numbers_text

        run(scenario)
    finally:
        for load in loads:
            load.stop()
