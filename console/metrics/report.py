"""``fleetdeck top``'s table and JSON: the same numbers the deck's columns show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def table_rows(
    snapshot: Mapping[Key, DeploymentMetrics], fleet: FleetMetrics | None
) -> list[list[str]]:
    rows = []
    for key in sorted(snapshot):
        metrics = snapshot[key]
        pods = f"{metrics.pods}" + (
            f" ({metrics.pods_failed} failed)" if metrics.pods_failed else ""
        )
        rows.append([key[0], key[1], pods, *_cells(metrics.numbers)])
    if fleet is not None:
        pods = f"{fleet.pods}" + (f" ({fleet.pods_failed} failed)" if fleet.pods_failed else "")
        rows.append(["(fleet)", f"{fleet.deployments} deployments", pods, *_cells(fleet.numbers)])
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
        "deployments": [
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
        ],
        "fleet": None
        if fleet is None
        else {
            "deployments": fleet.deployments,
            "pods": fleet.pods,
            "pods_failed": fleet.pods_failed,
            **_numbers_json(fleet.numbers),
        },
    }
