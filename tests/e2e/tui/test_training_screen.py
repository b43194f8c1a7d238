"""The Training screen on the KWOK cluster: a job launched through the form is listed with its
phase; a GPU job that fits no node says why it is Pending; the last epoch's metrics come from the
job's JSON log lines; the version a finished job exported is deployed from the screen. Every
launch and deploy is in the audit log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from console.audit import read_audit
from console.backends.kubernetes.backend import KubernetesBackend
from console.profile import load_profile
from console.tui.screens.logs import LogsScreen
from console.tui.screens.training import TrainingScreen
from console.tui.widgets.release import DeployDialog, RolloutPicker
from console.tui.widgets.train_form import TrainForm
from serving.store import ModelStore
from tests.e2e.tui.screen_host import ScreenHost, run, wait_for
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.kwok_backend import kwok_backend
from tests.support.versions import describe, make_version
from training.logs import TrainingLog


@pytest.fixture
def backend(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KubernetesBackend]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # this test's own audit log
    # A real local store of the test's own.
    with kwok_backend(k8s_cluster, k8s_namespace, str(tmp_path / "store")) as backend:
        yield backend


def host(backend: KubernetesBackend) -> ScreenHost:
    return ScreenHost(lambda: TrainingScreen(backend, backend.profile))


def rows(screen: TrainingScreen) -> dict[str, dict[str, str]]:
    """The jobs table as the user reads it: job name → column → cell."""
    table: DataTable[str] = screen.query_one(DataTable)
    titles = [str(column.label) for column in table.columns.values()]
    shown = {}
    for index in range(table.row_count):
        cells = [str(cell) for cell in table.get_row_at(index)]
        shown[cells[0]] = dict(zip(titles, cells, strict=True))
    return shown


async def fill_form(pilot: Any, namespace: str, **values: str) -> None:
    """Type into the launch form, field by field (tab moves on; ctrl+u clears a field)."""
    fields = ("model", "data", "namespace", "gpus", "epochs", "params", "grid")
    pilot.app.screen.query_one("#train-model").focus()
    for index, field in enumerate(fields):
        text = values.get(field, namespace if field == "namespace" else None)
        if text is not None:
            await pilot.press("ctrl+u", *text)
        if index < len(fields) - 1:
            await pilot.press("tab")  # enter in the last field launches


def epoch_lines(epochs: int, exported: int | None = None) -> list[str]:
    out = io.StringIO()
    log = TrainingLog(out)
    for n in range(1, epochs + 1):
        log.epoch(n, epochs, {"loss": 1.0 / n, "accuracy": 0.6 + n / 20}, 1000.0, 1.0)
    if exported is not None:
        log.event("exported", "published", model="digits", version=exported)
    return out.getvalue().splitlines()


def test_a_gpu_job_that_fits_no_node_is_listed_pending_with_the_reason(
    backend: KubernetesBackend, k8s_namespace: str
) -> None:
    async def scenario() -> None:
        app = host(backend)
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await pilot.press("n")
            assert isinstance(app.screen, TrainForm)
            await fill_form(pilot, k8s_namespace, model="digits", data="digits", gpus="16")
            await pilot.press("enter")
            await wait_for(pilot, "the form to close", lambda: app.screen is screen)
            assert "launched" in screen.notice
            job = await wait_for(
                pilot,
                "the job listed with its pending reason",
                lambda: next(
                    (r for r in rows(screen).values() if "gpu" in r["REASON"].lower()), None
                ),
            )
            assert job["PHASE"] == "Pending"
            assert job["GPUS"] == "16"
            assert job["NODE"] == "-"

    run(scenario)
    (entry,) = read_audit()
    assert entry.action == "train"
    assert entry.parameters["gpus"] == 16
    assert all(r.ok for r in entry.results)


def test_a_form_with_mistakes_says_what_to_fix_and_sends_nothing(
    backend: KubernetesBackend, k8s_namespace: str
) -> None:
    async def scenario() -> None:
        app = host(backend)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            form = app.screen
            assert isinstance(form, TrainForm)
            await fill_form(pilot, k8s_namespace, model="digits", data="digits", grid="width=")
            await pilot.press("enter")
            assert "grid:" in str(form.query_one("#train-results").render())
            await fill_form(pilot, k8s_namespace, model="Bad Name!", data="digits", grid="")
            await pilot.press("enter")
            assert "model: invalid model name" in str(form.query_one("#train-results").render())
            assert app.screen is form

    run(scenario)
    assert backend.jobs() == []
    assert read_audit() == []


def test_a_running_job_shows_its_last_epoch_and_a_finished_one_deploys_its_version(
    backend: KubernetesBackend, k8s_namespace: str, k8s_cluster: K8sCluster, tmp_path: Path
) -> None:
    store = ModelStore(backend.profile.store.root)
    version = store.publish("digits", make_version(tmp_path / "trained"), describe).version

    async def scenario() -> None:
        app = host(backend)
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await pilot.press("n")
            await fill_form(pilot, k8s_namespace, model="digits", data="digits", gpus="0")
            await pilot.press("enter")
            await wait_for(pilot, "the form to close", lambda: app.screen is screen)
            name = await wait_for(pilot, "the job listed", lambda: next(iter(rows(screen)), None))
            pod = await wait_for(
                pilot,
                "the job's pod",
                lambda: next(iter(backend.job_pods(k8s_namespace, name)), None),
            )
            k8s_cluster.append_log(k8s_namespace, pod, epoch_lines(3, exported=version))
            await pilot.press("ctrl+r")
            await wait_for(
                pilot,
                "the last epoch's metrics",
                lambda: rows(screen)[name]["PROGRESS"].startswith("3/3 loss 0.333 acc 0.750"),
            )
            assert f"exported digits v{version}" in str(screen.query_one("#training-info").render())
            await pilot.press("l")  # the job's logs
            logs = app.screen
            assert isinstance(logs, LogsScreen)
            await wait_for(pilot, "the job's log lines", lambda: logs.buffer.total >= 4)
            assert '"event": "exported"' in "\n".join(logs.buffer.lines())
            await pilot.press("escape")
            assert isinstance(app.screen, TrainingScreen)
            await pilot.press("d")
            dialog = app.screen
            assert isinstance(dialog, DeployDialog)
            await pilot.press("ctrl+u", *"digits-from-job", "enter")
            await wait_for(pilot, "the deploy", lambda: app.screen is screen, within=120)
            assert "created" in screen.notice or "digits-from-job" in screen.notice
            await wait_for(pilot, "the deployment in the cache", lambda: backend.deployments())
            await pilot.press("r")  # roll deployments out to the job's version
            picker = await wait_for(
                pilot,
                "the rollout picker",
                lambda: app.screen if isinstance(app.screen, RolloutPicker) else None,
            )
            assert [d.name for d in picker.deployments] == ["digits-from-job"]
            await pilot.press("escape")

    run(scenario)
    from kubernetes import client

    apps: Any = client.AppsV1Api(k8s_cluster.api_client())
    deployment = apps.read_namespaced_deployment("digits-from-job", k8s_namespace)
    assert deployment.metadata.labels["fleetdeck.io/model-version"] == str(version)
    assert [e.action for e in read_audit()] == ["train", "deploy"]


def test_a_viewer_is_not_offered_launch_or_deploy_and_is_told_why(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    backend = KubernetesBackend(
        load_profile("kwok"),
        api_client=k8s_cluster.api_client("viewer"),
        namespaces=[k8s_namespace],
        user="viewer",
    )
    assert backend.start()

    async def scenario() -> None:
        app = host(backend)
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await wait_for(pilot, "the permission check", lambda: screen.checked)
            notice = str(screen.query_one("#training-notice").render())
            assert "launch: forbidden: you may not create jobs in namespace" in notice
            await pilot.press("n")
            assert app.screen is screen  # no form: the key is not offered

    try:
        run(scenario)
    finally:
        backend.close()


def test_the_deck_opens_training_with_colon_jobs_and_models_with_colon_models(
    backend: KubernetesBackend,
) -> None:
    from console.tui.app import DeckApp
    from console.tui.screens.models import ModelsScreen

    async def scenario() -> None:
        app = DeckApp(backend, backend.profile, user="test", live=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("colon", *"jobs", "enter")
            await wait_for(
                pilot, "the Training screen", lambda: isinstance(app.screen, TrainingScreen)
            )
            await pilot.press("escape")
            await pilot.press("colon", *"models", "enter")
            await wait_for(pilot, "the Models screen", lambda: isinstance(app.screen, ModelsScreen))

    run(scenario)
