"""The deck over two real clusters, each measured through its own pod proxy to real predictors
serving real traffic: the Fleet table shows each cluster's row with its own numbers, and the
Overview shows a line per cluster, the fleet-wide line of both and the top tables over both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Static

from console.core.clusters import open_sessions
from console.core.session import SessionRequest
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.launch import cluster_decks, metrics_collector
from console.tui.screens.overview import OverviewScreen
from console.tui.session_switch import close_quietly
from tests.e2e.tui.deck_pilot import run, wait_for
from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.metrics.conftest import StartLoad
from tests.integration.metrics.test_top_clusters import alpha_served_in_a_and_b
from tests.support.clusters import reading_profiles_of
from tests.support.predictor import PredictorProcess


def test_the_deck_measures_each_cluster_and_its_overview_sums_them(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> None:
    fleetdeck = alpha_served_in_a_and_b(
        (k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b), serve, start_load, tmp_path
    )

    async def scenario() -> None:
        with open_sessions(load_profile("fleet"), SessionRequest()) as fleet:
            clusters = cluster_decks(fleet, metrics_collector)
            try:
                app = DeckApp(clusters.home.backend, clusters.home.profile, clusters=clusters)
                async with app.run_test(size=(160, 50)) as pilot:

                    def measured_in_both() -> bool:
                        rows = {r.deployment.cluster: r.metrics for r in app.fleet.rows}
                        return set(rows) == {"a", "b"} and all(
                            (m.rps or 0) > 0 for m in rows.values()
                        )

                    await wait_for(pilot, "each cluster's row measured", measured_in_both, 90)
                    await pilot.press("t")
                    screen = await wait_for(
                        pilot,
                        "the overview",
                        lambda: app.screen if isinstance(app.screen, OverviewScreen) else None,
                    )

                    def fleet_text() -> str:
                        return str(screen.query_one("#overview-fleet", Static).render())

                    await wait_for(
                        pilot,
                        "both clusters measured, and both together",
                        lambda: "all clusters: fleet: 2 deployments measured" in fleet_text(),
                        60,
                    )
                    assert "a: fleet: 1 deployments measured" in fleet_text()
                    assert "b: fleet: 1 deployments measured" in fleet_text()
                    busiest = screen.query_one("#overview-top-rps", DataTable)
                    names = {str(busiest.get_row_at(i)[0]) for i in range(busiest.row_count)}
                    assert names == {f"a/{k8s_namespace}/alpha", f"b/{k8s_namespace_b}/alpha"}
            finally:
                for deck in clusters.decks.values():
                    close_quietly(None, deck.metrics)

    with reading_profiles_of(fleetdeck):
        run(scenario)
