"""What the metrics pipeline reads and what it hands out.

``PodCounters`` is one scrape of one predictor (cumulative, as exposed). ``WindowRates`` is a
deployment's (or the fleet's) per-second rates over the sliding window, whichever source made
them. ``DeploymentMetrics`` and ``FleetMetrics`` are what the TUI, ``fleetdeck top`` and the
batch engine's SLO gates read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from console.metrics import histogram
from console.metrics.histogram import Buckets

Key = tuple[str, str]  # (namespace, deployment name), as ModelDeployment.key


@dataclass(frozen=True, slots=True)
class PodCounters:
    """One predictor's cumulative counters at one scrape (prediction requests only)."""

    requests: float  # v1 + v2 prediction requests answered
    errors: float  # of which answered 5xx
    latency: Buckets  # seconds, all protocols summed by le
    batch_sum: float  # instances run by the model
    batch_count: float  # model calls (batches)
    queue_depth: float  # a gauge: instances waiting now
    precomputed_hits: float | None = None  # None: the predictor does not export them
    precomputed_misses: float | None = None


@dataclass(frozen=True, slots=True)
class WindowRates:
    """Per-second rates over the window, summed over a deployment's pods (or a fleet's)."""

    requests: float = 0.0
    errors: float = 0.0
    latency: Buckets = ()  # per-second bucket rates, cumulative by le
    batch_sum: float = 0.0
    batch_count: float = 0.0
    queue_depth: float = 0.0
    precomputed_hits: float | None = None
    precomputed_misses: float | None = None
    span_s: float = 0.0  # the time the rates actually cover (0: one sample only, no rate yet)

    @staticmethod
    def sum(parts: Iterable[WindowRates]) -> WindowRates:
        parts = list(parts)

        def optional(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return sum(present) if present else None

        return WindowRates(
            requests=sum(p.requests for p in parts),
            errors=sum(p.errors for p in parts),
            latency=histogram.add(p.latency for p in parts),
            batch_sum=sum(p.batch_sum for p in parts),
            batch_count=sum(p.batch_count for p in parts),
            queue_depth=sum(p.queue_depth for p in parts),
            precomputed_hits=optional([p.precomputed_hits for p in parts]),
            precomputed_misses=optional([p.precomputed_misses for p in parts]),
            span_s=max((p.span_s for p in parts), default=0.0),
        )


@dataclass(frozen=True, slots=True)
class LatestNumbers:
    """The numbers shown for a window: one row of ``fleetdeck top``, one point of a plot."""

    requests_per_s: float
    error_percent: float | None  # 5xx share of prediction requests; None: no requests
    p50_ms: float | None  # None: no requests in the window
    p90_ms: float | None
    p99_ms: float | None
    batch_size: float | None  # mean instances per model call; None: no calls
    queue_depth: float  # instances waiting, summed over pods
    precomputed_hit_ratio: float | None  # None: not exported or no lookups

    @staticmethod
    def of(rates: WindowRates) -> LatestNumbers:
        def ms(q: float) -> float | None:
            value = histogram.quantile(q, rates.latency)
            return None if value is None else value * 1000.0

        lookups = (rates.precomputed_hits or 0.0) + (rates.precomputed_misses or 0.0)
        return LatestNumbers(
            requests_per_s=rates.requests,
            error_percent=100.0 * rates.errors / rates.requests if rates.requests > 0 else None,
            p50_ms=ms(0.5),
            p90_ms=ms(0.9),
            p99_ms=ms(0.99),
            batch_size=rates.batch_sum / rates.batch_count if rates.batch_count > 0 else None,
            queue_depth=rates.queue_depth,
            precomputed_hit_ratio=(
                (rates.precomputed_hits or 0.0) / lookups
                if rates.precomputed_hits is not None and lookups > 0
                else None
            ),
        )


@dataclass(frozen=True, slots=True)
class DeploymentMetrics:
    """One deployment's numbers over the window ending at ``at`` (Unix time)."""

    namespace: str
    name: str
    at: float
    numbers: LatestNumbers
    pods: int  # targets that answered this refresh
    pods_failed: int  # targets that did not (timeout, refused, bad answer)
    problems: tuple[str, ...] = ()  # one line per failed target: "digits-7d9f-x: timed out"
    span_s: float = 0.0  # what the window really covers (less than window_s at start)
    rates: WindowRates = field(default_factory=WindowRates)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    # Shortcuts for the columns and the SLO gates.
    @property
    def requests_per_s(self) -> float:
        return self.numbers.requests_per_s

    @property
    def error_percent(self) -> float | None:
        return self.numbers.error_percent

    @property
    def p50_ms(self) -> float | None:
        return self.numbers.p50_ms

    @property
    def p90_ms(self) -> float | None:
        return self.numbers.p90_ms

    @property
    def p99_ms(self) -> float | None:
        return self.numbers.p99_ms


@dataclass(frozen=True, slots=True)
class FleetMetrics:
    """Every measured deployment together: rates summed, percentiles from the summed
    histograms (never an average of percentiles)."""

    at: float
    numbers: LatestNumbers
    deployments: int
    pods: int
    pods_failed: int
    rates: WindowRates = field(default_factory=WindowRates)

    @property
    def requests_per_s(self) -> float:
        return self.numbers.requests_per_s

    @property
    def p99_ms(self) -> float | None:
        return self.numbers.p99_ms
