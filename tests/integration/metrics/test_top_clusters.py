"""``fleetdeck top`` over a profile naming two real clusters: each cluster measured through its
own metrics source (here each API server's pod proxy, to real predictors serving real
traffic), a CLUSTER column, a line per cluster, and a fleet-wide line whose percentiles come
from the clusters' latency histograms summed. A cluster whose source fails, or that cannot be
opened at all, is said without hiding the other cluster's numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.metrics.conftest import StartLoad
from tests.support.cli import Fleetdeck, Result
from tests.support.clusters import REFUSED, InProfile, clusters_fleetdeck, kubeconfig_moved
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods

POD_PROXY = 'source = "pod-proxy"\ninterval_seconds = 1\nwindow_seconds = 10\n'
PROMETHEUS_DOWN = 'source = "prometheus"\nprometheus_url = "http://127.0.0.1:1"\n'


def measured(name: str, kubeconfig: Path, namespace: str, metrics: str = POD_PROXY) -> InProfile:
    """A cluster of the profile, measured through ``metrics`` (default its pod proxy)."""
    return InProfile(name, kubeconfig, namespace, metrics=metrics)


def fleet_profile(tmp_path: Path, clusters: list[InProfile]) -> Fleetdeck:
    return clusters_fleetdeck(tmp_path, clusters)


def served(
    pods: ProxiedPods,
    name: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    rate: float,
    *flags: str,
) -> None:
    """Deployment ``name`` whose pod is a real predictor here, answering ``rate`` req/s."""
    predictor = serve("--host", "0.0.0.0", *flags)
    pods.serve(name, predictor.port)
    start_load(predictor, rate)


def alpha_served_in_a_and_b(
    a: tuple[K8sCluster, str],
    b: tuple[K8sCluster, str],
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> Fleetdeck:
    """The same deployment name in both clusters, a fast predictor in a and a slower one in
    b, each measured through its own pod proxy: the CLI on a profile naming both."""
    served(ProxiedPods(*a), "alpha", serve, start_load, 20.0)
    served(ProxiedPods(*b), "alpha", serve, start_load, 10.0, "--batch-timeout-ms", "8")
    return fleet_profile(
        tmp_path, [measured("a", a[0].kubeconfig, a[1]), measured("b", b[0].kubeconfig, b[1])]
    )


def lines_of(result: Result) -> dict[str, list[list[str]]]:
    """The table's header, its rows by their first cell, and the ``!`` lines."""
    header, *rows = result.out.splitlines()
    found: dict[str, list[list[str]]] = {"header": [header.split()], "!": []}
    for row in rows:
        if row.startswith("  ! "):
            found["!"].append([row[4:]])
        else:
            found.setdefault(row.split()[0], []).append(row.split())
    return found


def between(value: float, bounds: list[float]) -> bool:
    return min(bounds) <= value <= max(bounds)


def test_top_shows_each_clusters_deployments_and_totals_and_the_fleet_wide_numbers(
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

    as_json = fleetdeck("top", "--json")
    assert as_json.code == 0, as_json.err
    found: dict[str, Any] = as_json.json()
    a_row, b_row = found["deployments"]
    assert (a_row["cluster"], a_row["namespace"], a_row["name"]) == ("a", k8s_namespace, "alpha")
    assert (b_row["cluster"], b_row["namespace"], b_row["name"]) == (
        "b",
        k8s_namespace_b,
        "alpha",
    )
    for row in (a_row, b_row):
        assert row["pods"] == 1
        assert row["requests_per_s"] > 0
        assert row["p50_ms"] > 0
    a, b = found["clusters"]
    assert [(c["cluster"], c["source"], c["error"]) for c in (a, b)] == [
        ("a", "pod-proxy", None),
        ("b", "pod-proxy", None),
    ]
    assert a["totals"]["requests_per_s"] == a_row["requests_per_s"]
    assert b["totals"]["requests_per_s"] == b_row["requests_per_s"]
    fleet = found["fleet"]
    assert (fleet["clusters"], fleet["deployments"], fleet["pods"]) == (2, 2, 2)
    assert fleet["requests_per_s"] == pytest.approx(
        a_row["requests_per_s"] + b_row["requests_per_s"]
    )
    # Quantiles of every request together lie between the clusters' own (a mixture's do);
    # an average of percentiles would too, so the arithmetic itself is pinned by the unit
    # tests (tests/unit/console/metrics/test_across_clusters.py).
    for quantile in ("p50_ms", "p99_ms"):
        assert between(fleet[quantile], [a["totals"][quantile], b["totals"][quantile]])

    table = fleetdeck("top")
    assert table.code == 0, table.err
    lines = lines_of(table)
    assert lines["header"][0][:4] == ["CLUSTER", "NAMESPACE", "NAME", "PODS"]
    a_lines, b_lines = lines["a"], lines["b"]
    assert [line[:4] for line in a_lines] == [
        ["a", k8s_namespace, "alpha", "1"],
        ["a", "(cluster)", "1", "deployments"],
    ]
    assert [line[:4] for line in b_lines] == [
        ["b", k8s_namespace_b, "alpha", "1"],
        ["b", "(cluster)", "1", "deployments"],
    ]
    (fleet_line,) = lines["(fleet)"]
    assert fleet_line[:6] == ["(fleet)", "2", "clusters", "2", "deployments", "2"]
    assert lines["!"] == []


def test_a_clusters_failing_metrics_source_is_said_beside_the_other_clusters_numbers(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> None:
    served(ProxiedPods(k8s_cluster, k8s_namespace), "alpha", serve, start_load, 20.0)
    fleetdeck = fleet_profile(
        tmp_path,
        [
            measured("a", k8s_cluster.kubeconfig, k8s_namespace),
            # b's own Prometheus refuses connections.
            measured("b", k8s_cluster_b.kubeconfig, k8s_namespace_b, PROMETHEUS_DOWN),
        ],
    )

    table = fleetdeck("top")
    assert table.code == 1, table.err  # a partial answer
    lines = lines_of(table)
    assert [line[:4] for line in lines["a"]] == [
        ["a", k8s_namespace, "alpha", "1"],
        ["a", "(cluster)", "1", "deployments"],
    ]
    assert "b" not in lines  # no numbers passed off as b's
    assert lines["(fleet)"][0][:3] == ["(fleet)", "1", "cluster"]
    ((said,),) = lines["!"]
    assert said.startswith("cluster b: ")
    assert "127.0.0.1:1" in said

    as_json = fleetdeck("top", "--json")
    assert as_json.code == 1
    found = as_json.json()
    assert [d["cluster"] for d in found["deployments"]] == ["a"]
    a, b = found["clusters"]
    assert a["error"] is None
    assert (b["source"], b["totals"]) == ("prometheus", None)
    assert "127.0.0.1:1" in b["error"]
    assert found["fleet"]["clusters"] == 1
    assert found["fleet"]["requests_per_s"] == a["totals"]["requests_per_s"]


def test_a_cluster_that_cannot_be_opened_is_said_on_stderr_beside_the_others_numbers(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    tmp_path: Path,
) -> None:
    served(ProxiedPods(k8s_cluster, k8s_namespace), "alpha", serve, start_load, 20.0)
    gone = kubeconfig_moved(k8s_cluster, tmp_path / "gone.kubeconfig", REFUSED)
    fleetdeck = fleet_profile(
        tmp_path,
        [measured("a", k8s_cluster.kubeconfig, k8s_namespace), measured("gone", gone, "models")],
    )

    table = fleetdeck("top")

    assert table.code == 1
    assert "fleetdeck: cluster gone: " in table.err
    lines = lines_of(table)
    assert lines["header"][0][0] == "CLUSTER"
    assert [line[:3] for line in lines["a"]] == [
        ["a", k8s_namespace, "alpha"],
        ["a", "(cluster)", "1"],
    ]
    assert lines["(fleet)"][0][:3] == ["(fleet)", "1", "cluster"]
