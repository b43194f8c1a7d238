"""``fleetdeck watch`` on the test cluster, measuring a real predictor behind a deployment's
pod through the API server's pod proxy: a predictor whose batching window makes every request
wait (``--batch-timeout-ms 60`` at a few requests a second) breaches a 20 ms p99 SLO, is printed
as such and makes the watch exit 1; under a limit it meets, the watch prints nothing and exits
0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.metrics.conftest import StartLoad
from tests.integration.metrics.test_top_clusters import POD_PROXY, served
from tests.support.cli import Fleetdeck
from tests.support.clusters import InProfile, clusters_fleetdeck
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods


def watching(tmp_path: Path, cluster: K8sCluster, namespace: str, slo: str) -> Fleetdeck:
    measured = InProfile("a", cluster.kubeconfig, namespace, metrics=POD_PROXY)
    return clusters_fleetdeck(tmp_path, [measured], tables=f"[slo]\n{slo}")


def test_watch_prints_a_breach_of_the_slo_as_it_happens_and_exits_1(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> None:
    pods = ProxiedPods(k8s_cluster, k8s_namespace)
    served(pods, "slow", serve, start_load, 5.0, "--batch-timeout-ms", "60")
    strict = watching(tmp_path / "strict", k8s_cluster, k8s_namespace, "p99_ms = 20\n")

    breached = strict("watch", "--for", "20s")

    assert breached.code == 1, breached.err + breached.out
    (line,) = [line for line in breached.out.splitlines() if " BREACH " in line]
    assert f"{k8s_namespace}/slow: p99 " in line
    assert line.endswith("> 20 ms")

    relaxed = watching(tmp_path / "relaxed", k8s_cluster, k8s_namespace, "p99_ms = 5000\n")
    quiet = relaxed("watch", "--for", "12s", "--json")
    assert quiet.code == 0, quiet.err + quiet.out
    assert quiet.out == ""
