"""``fleetdeck watch`` on the test cluster, measuring a real predictor behind a deployment's
pod through the API server's pod proxy: a predictor whose batching window makes every request
wait (``--batch-timeout-ms 60`` at a few requests a second) breaches a 20 ms p99 SLO, is printed
as such and makes the watch exit 1; under a limit it meets, the watch prints nothing and exits
0."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.metrics.conftest import StartLoad
from tests.integration.metrics.test_top_clusters import POD_PROXY, served
from tests.support.cli import Fleetdeck, OutputLines
from tests.support.clusters import InProfile, clusters_fleetdeck
from tests.support.k8s_objects import apps, predictor
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


def test_watch_prints_a_batch_that_halts_while_it_watches_and_exits_1(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> None:
    # Five replicas roll one pod at a time: each rollout takes seconds, room to halt mid-way.
    for name in ("digits-1", "digits-2", "digits-3"):
        apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, predictor(name, replicas=5))
    fleetdeck = watching(tmp_path, k8s_cluster, k8s_namespace, "p99_ms = 5000\n")
    poll_until("three rows", lambda: len(fleetdeck("ls", "-o", "name").out.split()) == 3)
    watcher = fleetdeck.start("watch", "--for", "60s")
    events = OutputLines(watcher)
    rollout = fleetdeck.start(
        "rollout", "-l", "fleetdeck.io/model=digits", "--version", "2", "--no-verify",
        "--waves", "1,100%", "--bake", "0", "--yes",
    )  # fmt: skip
    batches = tmp_path / "state" / "fleetdeck" / "batches"
    poll_until("the batch's journal", lambda: batches.is_dir() and any(batches.glob("*.jsonl")))
    (batch_id,) = [p.stem for p in batches.glob("*.jsonl")]
    poll_until("the halt asked", lambda: fleetdeck("batch", "halt", batch_id).code == 0)
    rollout.communicate(timeout=120)

    seen = events.until(lambda line: " HALTED " in line, timeout=60)
    assert f" HALTED batch {batch_id} halted: " in seen[-1]
    watcher.send_signal(signal.SIGINT)  # Ctrl-C: it says what happened in its exit status
    assert watcher.wait(timeout=30) == 1
