"""The collector's bookkeeping: what it keeps, forgets and hands out between refreshes.

The source here is a scripted one (pure logic); real predictors, the pod proxy and a real
Prometheus are in tests/integration/metrics.
"""

from __future__ import annotations

from console.metrics import MetricsCollector
from console.metrics.readings import Key, PodCounters
from console.metrics.sources import Reading, SourceError, Wanted

A: Key = ("models", "a")
B: Key = ("models", "b")


def counters(requests: float) -> PodCounters:
    return PodCounters(
        requests=requests,
        errors=0.0,
        latency=((0.005, requests), (float("inf"), requests)),
        batch_sum=requests,
        batch_count=requests,
        queue_depth=0.0,
    )


class ScriptedSource:
    """Every deployment in ``fleet`` has one pod serving 10 requests/s of the fake clock."""

    name = "scripted"
    windowed = False

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.fleet: set[Key] = {A, B}
        self.asked: list[Wanted] = []
        self.failing = False

    def read(self, wanted: Wanted, window_s: float) -> Reading:
        self.asked.append(wanted)
        if self.failing:
            raise SourceError("Prometheus at http://prom:9090 did not answer")
        keys = {k for k in self.fleet if wanted is None or k in wanted}
        reading = Reading(keys=set(keys))
        for key in keys:
            reading.pods[key] = {f"{key[1]}-0": counters(10.0 * self.clock[0])}
            reading.targeted[key] = {f"{key[1]}-0"}
        return reading

    def close(self) -> None:
        pass


def make(history: int = 5) -> tuple[MetricsCollector, ScriptedSource, list[float]]:
    clock = [0.0]
    source = ScriptedSource(clock)
    collector = MetricsCollector(
        source,
        10.0,
        interval_s=1.0,
        history_points=history,
        clock=lambda: clock[0],
        wall_clock=lambda: 1_000_000 + clock[0],
    )
    return collector, source, clock


def refresh_at(collector: MetricsCollector, clock: list[float], *seconds: float) -> None:
    for second in seconds:
        clock[0] = second
        collector.refresh()


def test_rates_fleet_and_bounded_history() -> None:
    collector, _, clock = make(history=5)
    refresh_at(collector, clock, *range(0, 12))

    snapshot = collector.snapshot()
    assert snapshot[A].requests_per_s == 10.0
    assert snapshot[A].pods == 1
    fleet = collector.fleet()
    assert fleet is not None
    assert fleet.requests_per_s == 20.0
    assert fleet.deployments == 2
    assert len(collector.deployment_history(A)) == 5  # a ring: the newest five
    assert len(collector.fleet_history()) == 5


def test_an_unwanted_deployment_keeps_its_last_numbers_and_a_deleted_one_goes() -> None:
    collector, source, clock = make()
    refresh_at(collector, clock, 0, 1)
    collector.set_wanted({A})
    source.fleet = {A}  # and B is deleted meanwhile... but it is not asked about
    refresh_at(collector, clock, 2)
    assert source.asked[-1] == frozenset({A})
    assert set(collector.snapshot()) == {A, B}  # B unwanted: kept as it was

    collector.set_wanted(None)
    refresh_at(collector, clock, 3)
    assert set(collector.snapshot()) == {A}  # asked about, not found: gone


def test_a_failed_source_keeps_the_last_numbers_and_says_why() -> None:
    collector, source, clock = make()
    refresh_at(collector, clock, 0, 1)
    source.failing = True
    refresh_at(collector, clock, 2)

    assert collector.error == "Prometheus at http://prom:9090 did not answer"
    assert collector.snapshot()[A].requests_per_s == 10.0
    source.failing = False
    refresh_at(collector, clock, 3)
    assert collector.error == ""


def test_the_baseline_is_the_last_window_with_traffic_before_a_moment() -> None:
    collector, _, clock = make(history=50)
    refresh_at(collector, clock, *range(0, 20))
    cut = 1_000_000 + 9.5

    baseline = collector.baseline(A, before=cut)

    assert baseline is not None
    assert baseline.at == 1_000_000 + 9
    assert collector.baseline(("models", "nope")) is None


def test_listeners_hear_about_every_refresh_until_they_unsubscribe() -> None:
    collector, _, clock = make()
    heard: list[int] = []
    unsubscribe = collector.subscribe(lambda: heard.append(collector.refreshes))
    refresh_at(collector, clock, 0, 1)
    unsubscribe()
    refresh_at(collector, clock, 2)

    assert heard == [1, 2]
