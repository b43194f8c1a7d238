"""Reading the fleet for the Fleet screen (in a worker thread): rows, widths, connection.

``read_metrics`` is the one place the deck reads serving metrics: the metrics collector
(console/metrics) is handed to the deck; without one the metric columns show ``-``.

A deck over several clusters reads them all through one :class:`FleetReader`: each cluster's
rows with its own metrics, its own connection state, and rows marked stale while it is not
answering. A cluster whose read fails keeps its last rows (stale) and never holds up the others.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from console.backends.base import Backend, Connection
from console.model import ModelDeployment
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
class ClusterLink:
    """One cluster's state as the header shows it."""

    name: str
    connection: Connection | None  # None: it could not be opened (``why``)
    why: str = ""

    @property
    def live(self) -> bool:
        return self.connection is not None and self.connection.live


@dataclass(frozen=True)
class FleetSnapshot:
    rows: list[FleetRow]
    widths: tuple[int, ...]
    connection: Connection  # a deck over several clusters: the first one not live, if any
    seconds: float  # how long reading took: the screen spaces refreshes by it
    clusters: tuple[ClusterLink, ...] = ()  # () for a one-cluster deck
    problems: tuple[str, ...] = field(default=())  # clusters whose read failed just now, and why


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


@dataclass(frozen=True)
class ClusterFeed:
    """One cluster a deck over several reads: its name, backend and metrics collector."""

    name: str
    backend: Backend
    metrics: MetricsSource | None = None


class FleetReader:
    """Every cluster's fleet as one list of rows (blocking: call it from a worker, one read at
    a time). Clusters that could not be opened are named with the reason; a cluster whose read
    fails shows its last rows, stale, and the failure is in ``problems``."""

    def __init__(
        self,
        feeds: Sequence[ClusterFeed],
        unavailable: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.feeds = list(feeds)
        self.unavailable = dict(unavailable or {})
        self.clock = clock
        self._last: dict[str, list[ModelDeployment]] = {}
        self._failing_since: dict[str, datetime] = {}  # clusters whose reads fail, since when

    def __call__(self) -> FleetSnapshot:
        started = time.perf_counter()
        now = self.clock()
        rows: list[FleetRow] = []
        links: list[ClusterLink] = []
        problems: list[str] = []
        for feed in self.feeds:
            deployments, connection = self._read(feed, now)
            if deployments is None:
                problems.append(f"cluster {feed.name}: {connection.detail}")
                deployments = self._last.get(feed.name, [])
            else:
                self._last[feed.name] = deployments
            stamped = [_in_cluster(d, feed.name) for d in deployments]
            metrics = read_metrics(feed.metrics)
            rows += build_rows(stamped, metrics, now, stale=not connection.live)
            links.append(ClusterLink(feed.name, connection))
        links += [ClusterLink(name, None, why) for name, why in self.unavailable.items()]
        rows.sort(key=lambda r: r.key)
        down = [link.connection for link in links if link.connection and not link.live]
        connection = down[0] if down else Connection(True, now)
        seconds = time.perf_counter() - started
        return FleetSnapshot(
            rows, column_widths(rows), connection, seconds, tuple(links), tuple(problems)
        )

    def _read(
        self, feed: ClusterFeed, now: datetime
    ) -> tuple[list[ModelDeployment] | None, Connection]:
        try:
            deployments = feed.backend.deployments()
        except Exception as exc:  # this cluster's rows stay as last seen; the others go on
            since = self._failing_since.setdefault(feed.name, now)
            return None, Connection(False, since, f"cannot read the fleet: {exc}")
        self._failing_since.pop(feed.name, None)
        try:
            return deployments, feed.backend.connection()
        except Exception as exc:
            return deployments, Connection(False, now, str(exc))


def _in_cluster(d: ModelDeployment, cluster: str) -> ModelDeployment:
    return d if d.cluster == cluster else dataclasses.replace(d, cluster=cluster)
