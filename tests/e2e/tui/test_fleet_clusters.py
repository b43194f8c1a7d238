"""The deck opened on a profile naming two real clusters: one that cannot be reached is named
in the header while the other's rows show; and what a row of the second cluster leads to (its
Deployment screen's actions, a rollback in waves of its rows) happens in that cluster only,
leaving the same names in the first cluster untouched; the Changes screen then shows both
clusters' changes, each named by its cluster."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from console.batch.journal import BatchState
from console.changes.model import Kind
from console.core.clusters import open_sessions
from console.core.session import SessionRequest
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.launch import cluster_decks
from console.tui.screens.action_dialog import ActionDialog
from console.tui.screens.batch import BatchScreen
from console.tui.screens.changes import ChangesScreen
from console.tui.screens.deployment import DeploymentScreen
from tests.e2e.tui.deck_pilot import run, shown_names, type_text, wait_for
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.clusters import (
    REFUSED,
    InProfile,
    clusters_fleetdeck,
    kubeconfig_moved,
    reading_profiles_of,
)
from tests.support.k8s_objects import VERSION, apps, predictor


def test_a_cluster_that_cannot_be_opened_is_named_in_the_header_and_the_other_is_shown(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> None:
    apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, predictor("digits"))
    away = kubeconfig_moved(k8s_cluster, tmp_path / "away.yaml", REFUSED)
    fleetdeck = clusters_fleetdeck(
        tmp_path,
        [
            InProfile("a", k8s_cluster.kubeconfig, k8s_namespace),
            InProfile("b", away, k8s_namespace),
        ],
    )

    async def scenario() -> None:
        with open_sessions(load_profile("fleet"), SessionRequest(request_timeout=5)) as fleet:
            assert set(fleet.unavailable) == {"b"}
            clusters = cluster_decks(fleet, lambda profile, backend: None)
            app = DeckApp(clusters.home.backend, clusters.home.profile, clusters=clusters)
            async with app.run_test(size=(160, 40)) as pilot:
                await wait_for(pilot, "a's row", lambda: shown_names(app) == ["digits"])
                status = app.fleet.query_one("#fleet-status").info  # type: ignore[attr-defined]
                links = {link.name: link for link in status.clusters}
                assert links["a"].live
                assert links["b"].connection is None
                assert links["b"].why  # why it could not be opened, shown beside its name
                assert app.fleet.table.view[0].deployment.cluster == "a"
                await pilot.press("slash")
                await type_text(pilot, "cluster=b")
                assert shown_names(app) == []
                await pilot.press("escape")
                assert shown_names(app) == ["digits"]
                # The row's cluster answers for its actions; the missing one is not asked.
                assert app.fleet.why_not("scale") == ""

    with reading_profiles_of(fleetdeck):
        run(scenario)


def test_a_row_in_the_second_cluster_is_scaled_and_rolled_back_in_waves_there(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    tmp_path: Path,
) -> None:
    # The same two names in both clusters; b's have a second revision to roll back from.
    for cluster, namespace in ((k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b)):
        for name in ("digits-1", "digits-2"):
            apps(cluster).create_namespaced_deployment(namespace, predictor(name))
    for name in ("digits-1", "digits-2"):
        apps(k8s_cluster_b).replace_namespaced_deployment(
            name, k8s_namespace_b, predictor(name, version="2")
        )
    fleetdeck = clusters_fleetdeck(
        tmp_path,
        [
            InProfile("a", k8s_cluster.kubeconfig, k8s_namespace),
            InProfile("b", k8s_cluster_b.kubeconfig, k8s_namespace_b),
        ],
    )

    def in_b_on(version: str) -> bool:
        found = apps(k8s_cluster_b).list_namespaced_deployment(k8s_namespace_b).items
        return {d.spec.template.metadata.labels[VERSION] for d in found} == {version}

    poll_until("b's deployments on version 2", lambda: in_b_on("2"))

    async def scenario() -> None:
        with open_sessions(load_profile("fleet"), SessionRequest()) as fleet:
            clusters = cluster_decks(fleet, lambda profile, backend: None)
            app = DeckApp(clusters.home.backend, clusters.home.profile, clusters=clusters)
            async with app.run_test(size=(160, 50)) as pilot:
                await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
                await pilot.press("slash")
                await type_text(pilot, "cluster=b")
                await pilot.press("enter")
                # The Deployment screen of b's digits-1 acts in b.
                await pilot.press("enter")
                await wait_for(
                    pilot, "b's detail", lambda: isinstance(app.screen, DeploymentScreen)
                )
                await pilot.press("s")
                box = await wait_for(pilot, "the scale dialog", lambda: dialog_of(app))
                assert [(d.cluster, d.name) for d in box.targets] == [("b", "digits-1")]
                box.query_one("#replicas", Input).value = "3"
                box.query_one("#replicas", Input).focus()
                await pilot.press("enter")
                await wait_for(pilot, "the scale to finish", lambda: box.finished)
                assert [r.ok for r in box.results] == [True]
                await pilot.press("escape", "escape")  # the dialog, then the detail
                # Both of b's rows rolled back in waves: the batch is b's, and opens on b.
                await pilot.press("A", "b")
                box = await wait_for(pilot, "the rollback dialog", lambda: dialog_of(app))
                box.query_one("#plan-waves", Input).value = "1,100%"
                box.query_one("#plan-bake", Input).value = "0"
                box.query_one("#revision", Input).focus()
                await pilot.press("enter")
                screen = await wait_for(
                    pilot,
                    "the Batch screen",
                    lambda: app.screen if isinstance(app.screen, BatchScreen) else None,
                )
                assert screen.deck.cluster == "b"
                assert screen.batch_run.journal.replay().plan.cluster == "b"
                await wait_for(
                    pilot,
                    "the rollback to finish",
                    lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                    within=120,
                )
                # What changed, over both clusters: each change named by its cluster.
                app.go_home()
                await pilot.press("c")
                changes = await wait_for(
                    pilot,
                    "the Changes screen",
                    lambda: app.screen if isinstance(app.screen, ChangesScreen) else None,
                )
                await wait_for(
                    pilot,
                    "b's batch among the changes",
                    lambda: any(r.change.kind is Kind.BATCH for r in changes.rows),
                    within=30,
                )
                seen = {(r.change.kind, r.change.cluster) for r in changes.rows}
                assert {(Kind.BATCH, "b"), (Kind.SCALE, "b"), (Kind.DEPLOY, "a")} <= seen
                assert all(
                    a.where.split("/")[0] in ("a", "b")
                    for r in changes.rows
                    for a in r.change.affected
                )
                changes.set_filter("cluster=b")
                assert {r.change.cluster for r in changes.shown_rows} == {"b"}

    with reading_profiles_of(fleetdeck):
        run(scenario)
    poll_until("b's deployments back on version 1", lambda: in_b_on("1"))
    replicas = apps(k8s_cluster_b).read_namespaced_deployment("digits-1", k8s_namespace_b)
    assert replicas.spec.replicas == 3
    a_side = apps(k8s_cluster).list_namespaced_deployment(k8s_namespace).items
    assert {(d.metadata.name, d.spec.replicas) for d in a_side} == {
        ("digits-1", 1),
        ("digits-2", 1),
    }  # a's namesakes untouched


def dialog_of(app: DeckApp) -> ActionDialog | None:
    return app.screen if isinstance(app.screen, ActionDialog) else None
