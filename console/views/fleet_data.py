"""Reading the fleet for the Fleet screen (in a worker thread): rows, widths, connection.

``read_metrics`` is the one place the deck reads serving metrics: the metrics collector
(console/metrics) is handed to the deck; without one the metric columns show ``-``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from console.backends.base import Connection
from console.views.fleet_rows import (
    FleetRow,
    Key,
    MetricsSnapshot,
    RowMetrics,
    build_rows,
    column_widths,
)

Clock = Callable[[], datetime]


class MetricsFeed(Protocol):
    """What the deck needs of the metrics collector (``console.metrics.MetricsCollector``):
    the latest numbers per deployment, and a call after each refresh."""

    def snapshot(self) -> Mapping[Key, Any]: ...
    def subscribe(self, on_refresh: Callable[[], None]) -> Callable[[], None]: ...


MetricsSource = MetricsFeed


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FleetSnapshot:
    rows: list[FleetRow]
    widths: tuple[int, ...]
    connection: Connection
    seconds: float  # how long reading took: the screen spaces refreshes by it


def read_metrics(source: MetricsSource | None) -> MetricsSnapshot:
    """The metrics hook: the collector's latest numbers as row metrics, keyed by (namespace,
    name); empty without a collector or when it fails (the columns then show ``-``, the fleet
    still shows)."""
    if source is None:
        return {}
    try:
        return {
            key: RowMetrics(
                m.requests_per_s,
                m.p50_ms,
                m.p99_ms,
                m.error_percent,
                m.numbers.precomputed_hit_ratio,
            )
            for key, m in source.snapshot().items()
        }
    except Exception:
        return {}


def read_fleet(
    backend: Any, metrics: MetricsSource | None = None, clock: Clock = utc_now
) -> FleetSnapshot:
    """The fleet as rows (blocking: call it from a worker). A failed read of the deployments
    raises: the deck's loader keeps the last rows, says why and retries."""
    started = time.perf_counter()
    deployments = backend.deployments()
    try:
        connection = backend.connection()
    except Exception as exc:  # the status bar says it; the rows are still good
        connection = Connection(False, clock(), str(exc))
    rows = build_rows(deployments, read_metrics(metrics), clock())
    return FleetSnapshot(rows, column_widths(rows), connection, time.perf_counter() - started)
