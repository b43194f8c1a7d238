"""SLO breaches: which serving deployments are over their p99 or error limits now, and which
breaches started or ended since the last look, written once for ``fleetdeck watch`` and the
deck's banner.

A deployment breaches when, in the collector's window, its p99 latency is over the profile's
limit for it or its error percentage is (``[slo]``, with ``[[slo.rules]]`` per model or
namespace). One without traffic in the window has no p99 and no error rate: it does not breach.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from console.metrics.readings import DeploymentMetrics, Key
from console.profile import SloSettings
from console.views.format import printable

Where = tuple[str, str, str]  # (cluster, namespace, name); the cluster is "" for one cluster


@dataclass(frozen=True)
class Breach:
    """One deployment over its limits, as measured now."""

    where: Where
    model: str
    p99_ms: float | None
    error_percent: float | None
    p99_limit: float
    error_limit: float

    @property
    def name(self) -> str:
        return "/".join(part for part in self.where if part)

    @property
    def severity(self) -> float:
        """How far over, as a multiple of the worse limit (the worst breach first)."""
        ratios = [0.0]
        if self.p99_ms is not None and self.p99_limit > 0:
            ratios.append(self.p99_ms / self.p99_limit)
        if self.error_percent is not None and self.error_limit > 0:
            ratios.append(self.error_percent / self.error_limit)
        return max(ratios)

    def describe(self) -> str:
        """``a/models/digits: p99 812.0 ms > 250 ms`` (and the errors when they are over)."""
        over = []
        if self.p99_ms is not None and self.p99_ms > self.p99_limit:
            over.append(f"p99 {self.p99_ms:.1f} ms > {_limit(self.p99_limit)} ms")
        if self.error_percent is not None and self.error_percent > self.error_limit:
            over.append(f"errors {self.error_percent:.2f} % > {_limit(self.error_limit)} %")
        return printable(f"{self.name}: {', '.join(over)}")


def _limit(value: float) -> str:
    """``250``, ``11.7``, ``0.25``: a limit as a person wrote it, not ``11.6989``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def latest_only(snapshot: Mapping[Key, DeploymentMetrics]) -> dict[Key, DeploymentMetrics]:
    """The numbers the collector's last refresh read: it keeps the last ones of deployments it
    no longer reads (narrowed to the rows on screen), which must not raise or hold a breach."""
    latest = max((m.at for m in snapshot.values()), default=0.0)
    return {key: m for key, m in snapshot.items() if m.at >= latest}


def breaches_in(
    snapshot: Mapping[Key, DeploymentMetrics],
    models: Mapping[Key, str],
    slo: SloSettings,
    cluster: str = "",
) -> list[Breach]:
    """The deployments of one cluster's metrics ``snapshot`` over their limits (``models``:
    each deployment's model, which chooses its rule), the worst first."""
    found = []
    for key, metrics in snapshot.items():
        model = models.get(key, "")
        p99_limit, error_limit = slo.limits(model, key[0])
        p99, errors = metrics.p99_ms, metrics.error_percent
        if (p99 is not None and p99 > p99_limit) or (errors is not None and errors > error_limit):
            where = (cluster, key[0], key[1])
            found.append(Breach(where, model, p99, errors, p99_limit, error_limit))
    return sorted(found, key=lambda b: (-b.severity, b.where))


@dataclass
class BreachTracker:
    """What is breaching now and since when; :meth:`update` says what started and ended."""

    since: dict[Where, float] = field(default_factory=dict)  # breaching now: since (epoch s)
    current: dict[Where, Breach] = field(default_factory=dict)

    def update(self, found: Iterable[Breach], now: float) -> tuple[list[Breach], list[Where]]:
        """Take this look's breaches; returns (those that started, those that ended)."""
        latest = {b.where: b for b in found}
        started = [b for w, b in latest.items() if w not in self.current]
        ended = [w for w in self.current if w not in latest]
        for where in ended:
            self.since.pop(where, None)
        for breach in started:
            self.since[breach.where] = now
        self.current = latest
        return started, ended

    def worst(self) -> Breach | None:
        return max(self.current.values(), key=lambda b: b.severity, default=None)

    def summary(self) -> str:
        """For a header: ``2 breaching SLO; worst a/models/digits: p99 812.0 ms > 250 ms``."""
        worst = self.worst()
        if worst is None:
            return ""
        return f"{len(self.current)} breaching SLO; worst {worst.describe()}"
