"""Each change next to its effect: the affected deployments' p99 and error % in the minutes
before and after it, and a mark when a regression followed it.

The arithmetic is the batch engine's SLO gate (:func:`console.batch.gates.violation`): after
the change, p99 over R × the last window before it, or the error % up by more than P points.
The numbers come from the metrics history the deck keeps (the collector's windows), so a change
older than that history, or to a deployment that was not measured, is "unmeasured".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from console.batch.gates import SloReading, violation
from console.batch.plan import SloThresholds
from console.changes.model import Change, Key
from console.metrics.readings import DeploymentMetrics

# How far before and after a change the numbers are looked at.
SPAN = timedelta(minutes=5)

# The history of one deployment in one cluster, oldest first.
History = Callable[[str, Key], Sequence[DeploymentMetrics]]


@dataclass(frozen=True)
class Effect:
    """What followed a change, on its worst-hit deployment."""

    where: str  # the deployment the numbers are of ("cluster/ns/name")
    before: SloReading | None  # the last window with traffic before the change
    after: SloReading | None  # the worst window after it (None: not measured yet)
    regression: str = ""  # why it is a regression ("" when none)
    measuring: bool = False  # the change is newer than one window: numbers still coming

    @property
    def regressed(self) -> bool:
        return bool(self.regression)


@dataclass(frozen=True)
class Series:
    """A deployment's numbers around a change, for the before/after plot."""

    where: str
    at: tuple[float, ...]  # seconds relative to the change (negative: before)
    p99_ms: tuple[float | None, ...]
    error_percent: tuple[float | None, ...]


def effect_of(
    change: Change,
    history: History,
    thresholds: SloThresholds,
    *,
    now: datetime,
    until: datetime | None = None,
) -> Effect | None:
    """The change's effect (None for a change that touches no serving deployment, or when no
    affected deployment has numbers from before it). ``until``: the next change to the same
    deployments, where what follows stops being this change's doing."""
    if not change.serving:
        return None
    start = change.time.timestamp()
    end = min((until or now).timestamp(), start + SPAN.total_seconds())
    worst: Effect | None = None
    for affected in change.affected:
        series = history(affected.cluster, affected.key)
        before = _before(series, start)
        if before is None:
            continue
        after_windows = [
            m for m in series if m.at - max(m.span_s, 0.0) >= start - 1.0 and m.at <= end
        ]
        readings = [_reading(m) for m in after_windows if m.numbers.p99_ms is not None]
        found = _worst(thresholds, before, readings)
        measuring = not readings and now.timestamp() < start + _window(series)
        effect = Effect(affected.where, before, found[0], found[1], measuring)
        if worst is None or _rank(effect) > _rank(worst):
            worst = effect
    return worst


def series_of(change: Change, history: History, effect: Effect | None) -> Series | None:
    """The numbers of the change's worst-hit deployment from ``SPAN`` before to ``SPAN``
    after it (or to now)."""
    chosen = next(
        (a for a in change.affected if effect is not None and a.where == effect.where),
        change.affected[0] if change.affected else None,
    )
    if chosen is None:
        return None
    start = change.time.timestamp()
    span = SPAN.total_seconds()
    points = [m for m in history(chosen.cluster, chosen.key) if abs(m.at - start) <= span]
    return Series(
        chosen.where,
        tuple(m.at - start for m in points),
        tuple(m.numbers.p99_ms for m in points),
        tuple(m.numbers.error_percent for m in points),
    )


def _before(series: Sequence[DeploymentMetrics], start: float) -> SloReading | None:
    for metrics in reversed(series):
        recent = metrics.at <= start and start - metrics.at <= SPAN.total_seconds()
        if recent and metrics.numbers.p99_ms is not None:
            return _reading(metrics)
    return None


def _reading(metrics: DeploymentMetrics) -> SloReading:
    return SloReading(metrics.numbers.p99_ms, metrics.numbers.error_percent)


def _worst(
    thresholds: SloThresholds, before: SloReading, readings: Sequence[SloReading]
) -> tuple[SloReading | None, str]:
    """The first window that breaks the gates (and why), else the one with the highest p99."""
    for reading in readings:
        why = violation(thresholds, before, reading)
        if why:
            return reading, why
    if not readings:
        return None, ""
    return max(readings, key=lambda r: r.p99_ms or 0.0), ""


def _window(series: Sequence[DeploymentMetrics]) -> float:
    return max((m.span_s for m in series[-3:]), default=30.0) or 30.0


def _rank(effect: Effect) -> tuple[bool, float]:
    return (effect.regressed, (effect.after.p99_ms or 0.0) if effect.after else 0.0)


def next_changes(changes: Sequence[Change]) -> dict[str, datetime]:
    """For each serving change, when the next change to any of its deployments came (the end
    of the span its effect is measured over)."""
    following: dict[str, datetime] = {}
    last_seen: dict[tuple[str, Key], datetime] = {}
    for change in sorted(changes, key=lambda c: c.time, reverse=True):
        if not change.serving:
            continue
        ends = [
            last_seen[(a.cluster, a.key)]
            for a in change.affected
            if (a.cluster, a.key) in last_seen
        ]
        if ends:
            following[change.id] = min(ends)
        for affected in change.affected:
            last_seen[(affected.cluster, affected.key)] = change.time
    return following
