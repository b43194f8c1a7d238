"""Several clusters' numbers as one fleet: each cluster's (from its own collector and source),
and fleet-wide ones made from the clusters' rates summed, the latency histograms bucket by
bucket, so that the fleet's p50/p99 are quantiles of every request's latency (an average of
the clusters' percentiles would not be a percentile of anything).

Usage (``fleetdeck top`` over a profile's ``[[clusters]]``)::

    each = [ClusterNumbers.of("eu-west", collector, keys), ...]   # after each refresh
    fleet = AcrossClusters.of(each)
    fleet.fleet                     # FleetMetrics of the clusters that answered, or None
    fleet.failed                    # the clusters whose source did not answer this refresh
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from console.metrics.collector import MetricsCollector
from console.metrics.readings import (
    DeploymentMetrics,
    FleetMetrics,
    Key,
    LatestNumbers,
    WindowRates,
)


@dataclass(frozen=True, slots=True)
class ClusterNumbers:
    """One cluster's numbers after a refresh of its collector: its deployments', its totals
    (its own fleet line), or why its metrics source did not answer."""

    cluster: str
    source: str  # the source's name: "pod-proxy", "prometheus", "direct"
    window_s: float
    deployments: Mapping[Key, DeploymentMetrics] = field(default_factory=dict)
    totals: FleetMetrics | None = None
    error: str = ""  # "" when the source answered

    @staticmethod
    def of(cluster: str, collector: MetricsCollector, keys: Collection[Key]) -> ClusterNumbers:
        """What ``collector`` holds now for the deployments ``keys``. A cluster whose source
        failed this refresh has no numbers: the last ones it kept are not passed off as
        current beside the other clusters' (nor summed into the fleet's)."""
        error = collector.error
        if error:
            return ClusterNumbers(cluster, collector.source.name, collector.window_s, error=error)
        snapshot = collector.snapshot()
        return ClusterNumbers(
            cluster,
            collector.source.name,
            collector.window_s,
            deployments={k: m for k, m in snapshot.items() if k in keys},
            totals=collector.fleet(),
        )


def fleet_wide(totals: Iterable[FleetMetrics]) -> FleetMetrics | None:
    """The clusters' totals as one fleet: rates, counts and queues summed, the latency
    histograms summed bucket by bucket (``sum by (le)``) and the percentiles read from that
    sum. None when no cluster has numbers."""
    parts = list(totals)
    if not parts:
        return None
    rates = WindowRates.sum(p.rates for p in parts)
    return FleetMetrics(
        at=max(p.at for p in parts),
        numbers=LatestNumbers.of(rates),
        deployments=sum(p.deployments for p in parts),
        pods=sum(p.pods for p in parts),
        pods_failed=sum(p.pods_failed for p in parts),
        rates=rates,
    )


def fleet_history(histories: Sequence[Sequence[FleetMetrics]]) -> list[FleetMetrics]:
    """Several clusters' fleet histories as one, refresh by refresh from the newest back (their
    collectors refresh on the same cadence), each point the clusters' points summed as
    :func:`fleet_wide` does; as long as the shortest history."""
    kept = [h for h in histories if h]
    length = min((len(h) for h in kept), default=0)
    merged = [fleet_wide(h[len(h) - length + i] for h in kept) for i in range(length)]
    return [point for point in merged if point is not None]


@dataclass(frozen=True, slots=True)
class AcrossClusters:
    """Every cluster's numbers (in the profile's order) and the fleet-wide ones."""

    clusters: tuple[ClusterNumbers, ...]
    fleet: FleetMetrics | None  # of the clusters that answered; None if none did

    @staticmethod
    def of(clusters: Sequence[ClusterNumbers]) -> AcrossClusters:
        answered = [c.totals for c in clusters if not c.error and c.totals is not None]
        return AcrossClusters(tuple(clusters), fleet_wide(answered))

    @property
    def answered(self) -> list[ClusterNumbers]:
        return [c for c in self.clusters if not c.error]

    @property
    def failed(self) -> list[ClusterNumbers]:
        return [c for c in self.clusters if c.error]

    def problems(self) -> list[str]:
        """One line per target that did not answer (``CLUSTER/NAMESPACE/NAME: why``), then
        one per cluster whose source did not (``cluster NAME: why``)."""
        return [
            f"{c.cluster}/{key[0]}/{key[1]}: {problem}"
            for c in self.clusters
            for key in sorted(c.deployments)
            for problem in c.deployments[key].problems
        ] + [f"cluster {c.cluster}: {c.error}" for c in self.failed]
