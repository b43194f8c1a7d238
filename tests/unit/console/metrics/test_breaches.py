"""SLO breaches, the arithmetic ``fleetdeck watch`` and the deck's banner share: a deployment
is over when its window's p99 or error percentage is over the limit for its model or
namespace; one without traffic is not; the tracker says which breaches started and ended."""

from __future__ import annotations

from console.metrics.breaches import BreachTracker, breaches_in
from console.metrics.histogram import from_observations
from console.metrics.readings import DeploymentMetrics, LatestNumbers, WindowRates
from console.profile import SloRule, SloSettings

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SLO = SloSettings(p99_ms=100.0, error_percent=1.0, rules=(SloRule(model="fast", p99_ms=20.0),))


def measured(
    name: str, latency_s: float, *, requests: int = 100, errors: int = 0
) -> DeploymentMetrics:
    window = WindowRates(
        requests=float(requests),
        errors=float(errors),
        latency=from_observations([latency_s] * requests, BOUNDS),
        span_s=10.0,
    )
    return DeploymentMetrics("models", name, 0.0, LatestNumbers.of(window), pods=1, pods_failed=0)


def snapshot(*metrics: DeploymentMetrics) -> dict[tuple[str, str], DeploymentMetrics]:
    return {m.key: m for m in metrics}


def test_a_deployment_over_its_models_limit_breaches_and_one_under_the_default_does_not() -> None:
    found = breaches_in(
        snapshot(measured("fast-a", 0.04), measured("slow-b", 0.04)),
        {("models", "fast-a"): "fast", ("models", "slow-b"): "slow"},
        SLO,
        cluster="eu",
    )
    (breach,) = found  # 40 ms: over fast's 20 ms, under the default 100 ms
    assert breach.name == "eu/models/fast-a"
    assert breach.describe().startswith("eu/models/fast-a: p99 ")
    assert "> 20 ms" in breach.describe()


def test_errors_over_the_limit_breach_and_the_worst_comes_first() -> None:
    found = breaches_in(
        snapshot(
            measured("a", 0.002, errors=2),  # 2 % errors against 1 %: twice over
            measured("b", 0.002, errors=5),  # five times over
            measured("c", 0.002, requests=0),  # no traffic: no p99, no error rate
        ),
        {},
        SLO,
    )
    assert [b.name for b in found] == ["models/b", "models/a"]
    assert "errors 5.00 % > 1 %" in found[0].describe()


def test_the_tracker_says_what_started_and_ended_and_keeps_since_when() -> None:
    tracker = BreachTracker()
    (over,) = breaches_in(snapshot(measured("a", 0.3)), {}, SLO)
    started, ended = tracker.update([over], now=100.0)
    assert (started, ended) == ([over], [])
    assert tracker.update([over], now=110.0) == ([], [])  # still over: nothing new
    assert tracker.since[over.where] == 100.0
    assert tracker.summary().startswith("1 breaching SLO; worst models/a: p99 ")
    assert tracker.update([], now=120.0) == ([], [over.where])
    assert tracker.summary() == ""
