"""The deck opened on a profile naming two real clusters, one of which cannot be reached: the
other's rows are shown, the header names the missing one with why, and neither the filter nor
an action waits on it."""

from __future__ import annotations

from pathlib import Path

from console.core.clusters import open_sessions
from console.core.session import SessionRequest
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.launch import cluster_decks
from tests.e2e.tui.deck_pilot import run, shown_names, type_text, wait_for
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.clusters import (
    REFUSED,
    InProfile,
    clusters_fleetdeck,
    kubeconfig_moved,
    reading_profiles_of,
)
from tests.support.k8s_objects import apps, predictor


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
