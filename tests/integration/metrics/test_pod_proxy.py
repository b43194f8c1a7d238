"""Metrics through the API server's pod proxy, from real predictors behind KWOK pods.

KWOK pods run no containers, so each test pod is given a real predictor: the predictor
listens on this machine's own (non-loopback) address, the pod declares the predictor's port,
and the pod's status IP is set to that address. The API server then proxies
``pods/<pod>/proxy/metrics`` to a real predictor exactly as it would to a real pod (it refuses
loopback addresses, hence the machine's own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.backends.kubernetes.backend import KubernetesBackend
from console.metrics import MetricsCollector, pod_proxy_source
from console.metrics.readings import DeploymentMetrics, Key
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.metrics.conftest import StartLoad
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods

ROOT = Path(__file__).resolve().parents[3]
WINDOW_S = 6.0


@pytest.fixture
def fleet(k8s_cluster: K8sCluster, k8s_namespace: str) -> ProxiedPods:
    return ProxiedPods(k8s_cluster, k8s_namespace)


@pytest.fixture
def backend(
    fleet: ProxiedPods, k8s_cluster: K8sCluster, k8s_namespace: str
) -> Iterator[KubernetesBackend]:
    backend = KubernetesBackend(
        fleet.profile, api_client=k8s_cluster.api_client(), namespaces=[k8s_namespace]
    )
    assert backend.start()
    yield backend
    backend.cache.stop()  # the api client is the fixture's, shared: not closed here


def when(
    collector: MetricsCollector, key: Key, condition: Callable[[DeploymentMetrics], object]
) -> Callable[[], DeploymentMetrics | None]:
    def check() -> DeploymentMetrics | None:
        metrics = collector.snapshot().get(key)
        return metrics if metrics is not None and condition(metrics) else None

    return check


def test_predictors_behind_pods_are_measured_through_the_api_servers_pod_proxy(
    fleet: ProxiedPods,
    backend: KubernetesBackend,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
) -> None:
    fast = serve("--host", "0.0.0.0")
    slow = serve("--host", "0.0.0.0", "--batch-timeout-ms", "8")
    for name, predictor in (("alpha", fast), ("beta", slow)):
        fleet.lead_to_this_machine(fleet.deploy(name, predictor.port))
    unreachable = fleet.deploy("gamma", 8080)  # KWOK's own pod IP: nothing listens there
    alpha, beta, gamma = ((k8s_namespace, n) for n in ("alpha", "beta", "gamma"))
    poll_until("the cache to see the deployments", lambda: len(backend.deployments()) == 3)
    start_load(fast, 15.0)
    start_load(slow, 10.0)

    collector = MetricsCollector(pod_proxy_source(backend), WINDOW_S, interval_s=0.5).start()
    try:
        a = poll_until("alpha's traffic", when(collector, alpha, lambda m: m.span_s > 2))
        b = poll_until("beta's traffic", when(collector, beta, lambda m: m.span_s > 2))
        c = poll_until("gamma's failure", when(collector, gamma, lambda m: m.pods_failed))
    finally:
        collector.stop()

    assert a.pods == 1
    assert a.requests_per_s > 0
    assert a.error_percent == 0
    assert a.p50_ms is not None
    assert b.p50_ms is not None
    assert b.p50_ms > a.p50_ms  # beta's batch timeout, seen through the proxy
    assert c.pods == 0
    assert c.problems[0].startswith(f"{unreachable}: HTTP ")  # the API server's answer

    # A user without `get pods/proxy` is told what is missing, and what else would do.
    as_viewer = KubernetesBackend(
        fleet.profile, api_client=k8s_cluster.api_client("viewer"), namespaces=[k8s_namespace]
    )
    assert as_viewer.start()
    source = pod_proxy_source(as_viewer)
    try:
        refused = source.read(frozenset({alpha}), WINDOW_S)
    finally:
        source.close()
        as_viewer.cache.stop()
    (problem,) = refused.problems[alpha]
    assert 'cannot get resource "pods/proxy"' in problem
    assert "need `get pods/proxy`; or name a Prometheus in the profile" in problem


def test_fleetdeck_top_prints_the_proxied_numbers(
    fleet: ProxiedPods,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> None:
    predictor = serve("--host", "0.0.0.0")
    fleet.lead_to_this_machine(fleet.deploy("alpha", predictor.port))
    start_load(predictor, 20.0)
    profiles = tmp_path / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "test.toml").write_text(
        'backend = "kubernetes"\n'
        f'[kubernetes]\nkubeconfig = "{k8s_cluster.kubeconfig}"\ncontext = "kwok-admin"\n'
        f'namespaces = ["{k8s_namespace}"]\n'
        '[store]\nroot = "/nonexistent"\n'
        '[metrics]\nsource = "pod-proxy"\ninterval_seconds = 1\nwindow_seconds = 10\n'
    )
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "FLEETDECK_PROFILE": "test",
    }

    def top(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", "top", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    as_json = top("--json")
    assert as_json.returncode == 0, as_json.stderr
    found = json.loads(as_json.stdout)
    (row,) = found["deployments"]
    assert (row["namespace"], row["name"], row["pods"]) == (k8s_namespace, "alpha", 1)
    assert row["requests_per_s"] > 0
    assert row["p99_ms"] > 0
    assert found["fleet"]["requests_per_s"] == row["requests_per_s"]
    assert found["source"] == "pod-proxy"

    table = top()
    assert table.returncode == 0, table.stderr
    header, alpha_row, fleet_row = table.stdout.splitlines()
    assert header.split()[:6] == ["NAMESPACE", "NAME", "PODS", "REQ/S", "ERR%", "P50"]
    assert alpha_row.split()[:3] == [k8s_namespace, "alpha", "1"]
    assert fleet_row.startswith("(fleet)")
