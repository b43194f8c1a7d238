"""SLO gates: a deployment's numbers during bake against its own numbers from before its wave.

The executor asks an :class:`SloSource` for readings; the metrics collector (``console.metrics``)
is one, through :class:`CollectorSource`, and tests can pass any object with ``reading``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from console.batch.plan import SloThresholds
from console.batch.runner import Target


@dataclass(frozen=True)
class SloReading:
    """Recent numbers of one deployment; None where there is no data (no traffic)."""

    p99_ms: float | None
    error_percent: float | None


class SloSource(Protocol):
    def reading(self, target: Target) -> SloReading | None:
        """The target's numbers over the recent window, or None when nothing is known."""
        ...

    def baseline(self, target: Target, before: float | None = None) -> SloReading | None:
        """The target's numbers from before its wave: the last window with traffic that ended
        at or before ``before`` (Unix time, the wave's start; None: the latest)."""
        ...


def violation(
    thresholds: SloThresholds, baseline: SloReading | None, now: SloReading | None
) -> str | None:
    """Why ``now`` breaks the gates against ``baseline`` (a sentence for the journal), or None.

    No baseline or no current number means no verdict: a deployment without traffic cannot
    regress, and is not failed for it.
    """
    if now is None or baseline is None:
        return None
    ratio = thresholds.p99_ratio
    p99, before_p99 = now.p99_ms, baseline.p99_ms
    if ratio is not None and p99 is not None and before_p99 and p99 > ratio * before_p99:
        return f"p99 {_ms(p99)} ms > {ratio:g} × baseline {_ms(before_p99)} ms"
    allowed = thresholds.error_percent
    if allowed is not None and now.error_percent is not None:
        before = baseline.error_percent or 0.0
        if now.error_percent > before + allowed:
            return f"errors {now.error_percent:.1f} % > baseline {before:.1f} % + {allowed:g} %"
    return None


def _ms(value: float) -> str:
    """Whole milliseconds, or two significant digits below 10 ms: a 0.4 ms baseline must not
    read as "0 ms" (a regression "> 2 × baseline 0 ms" explains nothing)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


@runtime_checkable
class BaselineCollector(Protocol):
    """A metrics collector that keeps each target's numbers from before a wave."""

    def get(self, target: Target) -> Any: ...
    def baseline(self, target: Target, before: float | None = None) -> Any: ...


class CollectorSource:
    """Readings from the metrics collector (``console.metrics.MetricsCollector``).

    Its numbers cover a sliding window (30 s by default): a bake shorter than the window
    still mixes in traffic from before the rollout, so bake at least one window long.
    """

    def __init__(self, collector: Any) -> None:
        self.collector = collector

    def reading(self, target: Target) -> SloReading | None:
        return _numbers(self.collector.get(target))

    def baseline(self, target: Target, before: float | None = None) -> SloReading | None:
        return _numbers(self.collector.baseline(target, before=before))


def _numbers(metrics: Any) -> SloReading | None:
    if metrics is None:
        return None
    numbers = metrics.numbers
    return SloReading(numbers.p99_ms, numbers.error_percent)
