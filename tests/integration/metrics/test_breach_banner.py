"""The deck's SLO banner and bell in a real terminal (tmux), on the test cluster: a real
predictor whose batching window makes each request wait breaks a 20 ms p99 SLO; the deck's top
line says so on every screen, and the terminal's bell rings in the deck's window (tmux flags
it, as it does for a window in the background)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.terminal.tmux_terminal import TmuxTerminal
from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.metrics.conftest import StartLoad
from tests.integration.metrics.test_top_clusters import POD_PROXY, served
from tests.support.clusters import InProfile, clusters_fleetdeck
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods


@pytest.fixture
def terminal() -> Iterator[TmuxTerminal]:
    term = TmuxTerminal(120, 40)
    try:
        yield term
    finally:
        term.close()


def test_a_breach_shows_a_banner_on_every_screen_and_rings_the_bell(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
    terminal: TmuxTerminal,
) -> None:
    served(ProxiedPods(k8s_cluster, k8s_namespace), "slow", serve, start_load, 5.0,
           "--batch-timeout-ms", "60")  # fmt: skip
    measured = InProfile("a", k8s_cluster.kubeconfig, k8s_namespace, metrics=POD_PROXY)
    fleetdeck = clusters_fleetdeck(tmp_path, [measured], tables="[slo]\np99_ms = 20\n")
    term = terminal
    term.start(fleetdeck.command(), {**fleetdeck.env, "TERM": "xterm-256color", "LANG": "C.UTF-8"})
    term.wait_for("the fleet", lambda s: "slow" in s and "● live" in s, 90)
    term.to_background()

    banner = term.wait_for("the breach banner", lambda s: "1 breaching SLO" in s, 90)
    assert f"worst {k8s_namespace}/slow: p99 " in banner.replace("\n", "")
    assert term.flag("window_bell_flag") == "1"
    # Every screen's top line carries it.
    term.command("jobs")
    jobs = term.wait_for("the Training screen", lambda s: "Training" in s, 30)
    assert "1 breaching SLO" in jobs
