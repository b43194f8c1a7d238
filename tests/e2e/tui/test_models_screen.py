"""The Models screen over a real local store with real versions, acting on the KWOK cluster:
versions listed with their manifest metrics; deploy a version; roll a chosen deployment out to
another version; read-only offers neither and says why."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, SelectionList

from console.audit import read_audit
from console.backends.kubernetes.backend import KubernetesBackend
from console.profile import load_profile
from console.tui.screens.models import ModelsScreen
from console.tui.widgets.release import DeployDialog, RolloutDialog, RolloutPicker
from serving.manifest import FileEntry, Manifest
from serving.store import ModelStore
from tests.e2e.tui.screen_host import ScreenHost, run, wait_for
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.versions import describe, make_version


def publish(store: ModelStore, folder: Path, model: str, accuracy: float, run_id: str) -> int:
    def described(version: int, files: Mapping[str, FileEntry]) -> Manifest:
        manifest = describe(version, files)
        return dataclasses.replace(
            manifest,
            metrics={
                "accuracy": accuracy,
                "int8_accuracy": accuracy - 0.002,
                "int8_accuracy_delta": -0.002,
            },
            training={"run_id": run_id, "data": "digits", "epochs": 5},
        )

    return store.publish(model, make_version(folder), described).version


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(str(tmp_path / "store"))
    publish(store, tmp_path / "a", "digits", 0.9512, "train-digits-aaaaa")
    publish(store, tmp_path / "b", "digits", 0.9634, "train-digits-bbbbb")
    publish(store, tmp_path / "c", "letters", 0.8801, "train-letters-ccccc")
    return store


def kwok_backend(
    k8s_cluster: K8sCluster, namespace: str, store: ModelStore, read_only: bool = False
) -> KubernetesBackend:
    kwok = load_profile("kwok")
    profile = dataclasses.replace(kwok, store=dataclasses.replace(kwok.store, root=store.root))
    return KubernetesBackend(
        profile,
        api_client=k8s_cluster.api_client(),
        namespaces=[namespace],
        read_only=read_only,
        user="test",
    )


@pytest.fixture
def backend(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    store: ModelStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KubernetesBackend]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # this test's own audit log
    backend = kwok_backend(k8s_cluster, k8s_namespace, store)
    assert backend.start()
    yield backend
    backend.close()


def rows(screen: ModelsScreen) -> list[dict[str, str]]:
    table: DataTable[str] = screen.query_one(DataTable)
    titles = [str(column.label) for column in table.columns.values()]
    return [
        dict(zip(titles, (str(c) for c in table.get_row_at(i)), strict=True))
        for i in range(table.row_count)
    ]


def test_versions_are_listed_newest_first_with_their_manifest_metrics(
    backend: KubernetesBackend,
) -> None:
    async def scenario() -> None:
        app = ScreenHost(lambda: ModelsScreen(backend, backend.profile))
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await wait_for(pilot, "three versions", lambda: len(rows(screen)) == 3)
            shown = [(r["MODEL"], r["VERSION"], r["ACCURACY"], r["INT8 Δ"]) for r in rows(screen)]
            assert shown == [
                ("digits", "2", "0.9634", "-0.0020"),
                ("digits", "1", "0.9512", "-0.0020"),
                ("letters", "1", "0.8801", "-0.0020"),
            ]
            first = rows(screen)[0]
            assert first["TRAINED BY"] == "train-digits-bbbbb"
            assert first["CREATED"] == "2026-11-26 00:00"
            assert first["SIZE"] == "21 B"  # graph, index and model bytes
            assert first["SERVING"] == "-"

    run(scenario)


def test_deploy_a_version_then_roll_the_deployment_out_to_another(
    backend: KubernetesBackend, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    from kubernetes import client

    apps: Any = client.AppsV1Api(k8s_cluster.api_client())

    def version_label() -> str:
        deployment = apps.read_namespaced_deployment("digits", k8s_namespace)
        return str(deployment.metadata.labels["fleetdeck.io/model-version"])

    async def scenario() -> None:
        app = ScreenHost(lambda: ModelsScreen(backend, backend.profile))
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await wait_for(pilot, "the versions", lambda: len(rows(screen)) == 3)
            await pilot.press("j", "d")  # digits v1
            assert isinstance(app.screen, DeployDialog)
            await pilot.press("tab", "ctrl+u", *k8s_namespace, "enter")
            await wait_for(pilot, "the deploy", lambda: app.screen is screen, within=120)
            assert version_label() == "1"
            await wait_for(pilot, "v1 serving", lambda: backend.deployment(k8s_namespace, "digits"))
            await pilot.press("ctrl+r")
            await wait_for(pilot, "the serving count", lambda: rows(screen)[1]["SERVING"] == "1")
            await pilot.press("k", "r")  # roll out to digits v2
            picker = app.screen
            assert isinstance(picker, RolloutPicker)
            assert len(picker.query_one(SelectionList).selected) == 1  # the v1 deployment
            await pilot.press("tab", "enter")
            dialog = app.screen
            assert isinstance(dialog, RolloutDialog)
            await pilot.press("enter")
            await wait_for(pilot, "the rollout", lambda: dialog.finished, within=120)
            await pilot.press("escape")
            assert "rollout to digits v2: 1 of 1 ok" in screen.notice

    run(scenario)
    assert version_label() == "2"
    assert [e.action for e in read_audit()] == ["deploy", "rollout"]


def test_read_only_offers_no_deploy_and_says_why(
    k8s_cluster: K8sCluster, k8s_namespace: str, store: ModelStore
) -> None:
    backend = kwok_backend(k8s_cluster, k8s_namespace, store, read_only=True)

    async def scenario() -> None:
        app = ScreenHost(lambda: ModelsScreen(backend, backend.profile))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await wait_for(pilot, "the versions", lambda: len(rows(screen)) == 3)
            await wait_for(pilot, "the permission check", lambda: screen.refusals)
            notice = str(screen.query_one("#models-notice").render())
            assert "not offered: deploy: read-only: profile 'kwok'" in notice
            await pilot.press("d", "r")
            assert app.screen is screen  # nothing opened

    try:
        run(scenario)
    finally:
        backend.close()
