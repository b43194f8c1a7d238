"""``fleetdeck top``'s table and JSON: the same numbers the deck's columns show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.metrics.clusters import AcrossClusters
from console.metrics.readings import DeploymentMetrics, FleetMetrics, Key, LatestNumbers

HEADERS = [
    "NAMESPACE",
    "NAME",
    "PODS",
    "REQ/S",
    "ERR%",
    "P50",
    "P90",
    "P99",
    "BATCH",
    "QUEUE",
    "HIT%",
]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}ms" if value < 100 else f"{value:.0f}ms"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cells(numbers: LatestNumbers) -> list[str]:
    hit = numbers.precomputed_hit_ratio
    return [
        _number(numbers.requests_per_s),
        _number(numbers.error_percent, 2),
        _ms(numbers.p50_ms),
        _ms(numbers.p90_ms),
        _ms(numbers.p99_ms),
        _number(numbers.batch_size),
        _number(numbers.queue_depth, 0),
        "-" if hit is None else f"{100 * hit:.1f}",
    ]


def _pods(pods: int, failed: int) -> str:
    return f"{pods}" + (f" ({failed} failed)" if failed else "")


def _deployment_rows(snapshot: Mapping[Key, DeploymentMetrics]) -> list[list[str]]:
    return [
        [key[0], key[1], _pods(m.pods, m.pods_failed), *_cells(m.numbers)]
        for key, m in sorted(snapshot.items())
    ]


def _totals_cells(totals: FleetMetrics) -> list[str]:
    return [
        f"{totals.deployments} deployments",
        _pods(totals.pods, totals.pods_failed),
        *_cells(totals.numbers),
    ]


def table_rows(
    snapshot: Mapping[Key, DeploymentMetrics], fleet: FleetMetrics | None
) -> list[list[str]]:
    rows = _deployment_rows(snapshot)
    if fleet is not None:
        rows.append(["(fleet)", *_totals_cells(fleet)])
    return rows


CLUSTER_HEADERS = ["CLUSTER", *HEADERS]


def cluster_table_rows(across: AcrossClusters) -> list[list[str]]:
    """Under :data:`CLUSTER_HEADERS`: every cluster's deployments, then a line per cluster
    with its totals (``(cluster)``), then the fleet-wide line of the clusters that answered
    (``(fleet)``, ``N clusters``). A cluster whose source did not answer has no lines."""
    rows = [[c.cluster, *row] for c in across.clusters for row in _deployment_rows(c.deployments)]
    rows.extend(
        [c.cluster, "(cluster)", *_totals_cells(c.totals)]
        for c in across.clusters
        if c.totals is not None and not c.error
    )
    if across.fleet is not None:
        answered = len(across.answered)
        clusters = f"{answered} cluster{'s' if answered != 1 else ''}"
        rows.append(["(fleet)", clusters, *_totals_cells(across.fleet)])
    return rows


def problems(snapshot: Mapping[Key, DeploymentMetrics]) -> list[str]:
    return [f"{k[0]}/{k[1]}: {p}" for k in sorted(snapshot) for p in snapshot[k].problems]


def _numbers_json(numbers: LatestNumbers) -> dict[str, Any]:
    return {
        "requests_per_s": numbers.requests_per_s,
        "error_percent": numbers.error_percent,
        "p50_ms": numbers.p50_ms,
        "p90_ms": numbers.p90_ms,
        "p99_ms": numbers.p99_ms,
        "batch_size": numbers.batch_size,
        "queue_depth": numbers.queue_depth,
        "precomputed_hit_ratio": numbers.precomputed_hit_ratio,
    }


def _deployments_json(snapshot: Mapping[Key, DeploymentMetrics]) -> list[dict[str, Any]]:
    return [
        {
            "namespace": key[0],
            "name": key[1],
            "pods": snapshot[key].pods,
            "pods_failed": snapshot[key].pods_failed,
            "problems": list(snapshot[key].problems),
            "span_s": snapshot[key].span_s,
            **_numbers_json(snapshot[key].numbers),
        }
        for key in sorted(snapshot)
    ]


def _totals_json(totals: FleetMetrics | None) -> dict[str, Any] | None:
    if totals is None:
        return None
    return {
        "deployments": totals.deployments,
        "pods": totals.pods,
        "pods_failed": totals.pods_failed,
        **_numbers_json(totals.numbers),
    }


def as_json(
    snapshot: Mapping[Key, DeploymentMetrics],
    fleet: FleetMetrics | None,
    *,
    source: str,
    window_s: float,
    error: str = "",
) -> dict[str, Any]:
    """Stable JSON: ``deployments`` (sorted by namespace, name) and ``fleet``."""
    return {
        "source": source,
        "window_s": window_s,
        "error": error or None,
        "deployments": _deployments_json(snapshot),
        "fleet": _totals_json(fleet),
    }


def clusters_as_json(across: AcrossClusters) -> dict[str, Any]:
    """Stable JSON over several clusters: ``clusters`` (in the profile's order: each one's
    source, window, error and ``totals``), ``deployments`` (each naming its ``cluster``;
    by cluster, then namespace, name) and ``fleet`` (the clusters that answered, their
    latency histograms summed; ``clusters`` counts them)."""
    fleet = _totals_json(across.fleet)
    return {
        "clusters": [
            {
                "cluster": c.cluster,
                "source": c.source,
                "window_s": c.window_s,
                "error": c.error or None,
                "totals": None if c.error else _totals_json(c.totals),
            }
            for c in across.clusters
        ],
        "deployments": [
            {"cluster": c.cluster, **entry}
            for c in across.clusters
            for entry in _deployments_json(c.deployments)
        ],
        "fleet": None if fleet is None else {"clusters": len(across.answered), **fleet},
    }
