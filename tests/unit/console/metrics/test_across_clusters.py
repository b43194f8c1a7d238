"""Several clusters as one fleet (``fleetdeck top`` over a profile's ``[[clusters]]``): each
cluster keeps its own numbers, and the fleet-wide ones are made from the clusters' rates
summed and their latency histograms summed bucket by bucket, never from averaged percentiles.

Pure logic: the clusters' collectors read scripted windowed sources (as a Prometheus answers);
real predictors on the two real clusters are in tests/integration/metrics/test_top_clusters.py.
"""

from __future__ import annotations

import pytest

from console.metrics import MetricsCollector, report
from console.metrics.clusters import AcrossClusters, ClusterNumbers, fleet_history, fleet_wide
from console.metrics.histogram import from_observations
from console.metrics.readings import FleetMetrics, Key, LatestNumbers, WindowRates
from console.metrics.sources import Reading, SourceError, Wanted

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DIGITS: Key = ("models", "digits")
FACES: Key = ("vision", "faces")


def rates(latencies_s: list[float], *, errors: float = 0.0, queue: float = 0.0) -> WindowRates:
    """A second's worth of requests with these latencies (rates per second over the window)."""
    return WindowRates(
        requests=float(len(latencies_s)),
        errors=errors,
        latency=from_observations(latencies_s, BOUNDS),
        batch_sum=float(len(latencies_s)),
        batch_count=float(len(latencies_s)),
        queue_depth=queue,
        span_s=10.0,
    )


def totals(window: WindowRates, *, deployments: int = 1, pods: int = 1) -> FleetMetrics:
    return FleetMetrics(
        at=1_000_000.0,
        numbers=LatestNumbers.of(window),
        deployments=deployments,
        pods=pods,
        pods_failed=0,
        rates=window,
    )


# A busy fast cluster and a quiet slow one: 980 requests/s at 8 ms, 20 requests/s at 400 ms.
FAST = rates([0.008] * 980, queue=1.0)
SLOW = rates([0.4] * 20, errors=2.0, queue=3.0)


def test_fleet_wide_percentiles_are_read_from_the_clusters_histograms_summed() -> None:
    fast, slow = totals(FAST), totals(SLOW, deployments=2, pods=3)

    fleet = fleet_wide([fast, slow])

    assert fleet is not None
    # Of the 1000 requests a second, the 10 slowest are the slow cluster's: the fleet's p99
    # (the 990th) is halfway into its bucket (0.25 s, 0.5 s], where its 20 requests fell.
    assert fleet.numbers.p99_ms == pytest.approx(375.0)
    assert fast.p99_ms is not None
    assert slow.p99_ms is not None
    assert fleet.numbers.p99_ms != pytest.approx((fast.p99_ms + slow.p99_ms) / 2)
    # The median (the 500th) is in the fast cluster's bucket (5 ms, 10 ms], 500 of 980 in.
    assert fleet.numbers.p50_ms == pytest.approx(5.0 + 5.0 * 500 / 980)
    assert fleet.rates.latency[-1] == (float("inf"), 1000.0)  # every request, bucket by bucket


def test_fleet_wide_rates_and_counts_are_the_clusters_summed() -> None:
    fleet = fleet_wide([totals(FAST), totals(SLOW, deployments=2, pods=3)])

    assert fleet is not None
    assert fleet.requests_per_s == 1000.0
    assert fleet.numbers.error_percent == pytest.approx(0.2)  # 2 of 1000, not (0 + 10) / 2
    assert fleet.numbers.queue_depth == 4.0
    assert (fleet.deployments, fleet.pods, fleet.pods_failed) == (3, 4, 0)


def test_no_cluster_with_numbers_makes_no_fleet_wide_line() -> None:
    assert fleet_wide([]) is None


class ScriptedPrometheus:
    """A windowed source answering ``answers`` (its deployments' rates), or failing."""

    name = "prometheus"
    windowed = True

    def __init__(self, answers: dict[Key, WindowRates]) -> None:
        self.answers = answers
        self.down = False

    def read(self, wanted: Wanted, window_s: float) -> Reading:
        if self.down:
            raise SourceError("Prometheus at http://prom-b:9090 did not answer")
        keys = {k for k in self.answers if wanted is None or k in wanted}
        return Reading(
            rates={k: self.answers[k] for k in keys},
            pod_counts=dict.fromkeys(keys, 1),
            keys=keys,
        )

    def close(self) -> None:
        pass


def refreshed(source: ScriptedPrometheus, keys: set[Key]) -> MetricsCollector:
    collector = MetricsCollector(source, 30.0, interval_s=1.0)
    collector.set_wanted(keys)
    collector.refresh()
    return collector


def test_a_cluster_whose_source_fails_has_no_numbers_and_is_left_out_of_the_fleet() -> None:
    a_source = ScriptedPrometheus({DIGITS: FAST})
    b_source = ScriptedPrometheus({DIGITS: SLOW})
    a, b = refreshed(a_source, {DIGITS}), refreshed(b_source, {DIGITS})
    b_source.down = True
    b.refresh()  # b's collector keeps its last numbers; they are not shown as current

    across = AcrossClusters.of(
        [ClusterNumbers.of("a", a, {DIGITS}), ClusterNumbers.of("b", b, {DIGITS})]
    )

    assert [c.cluster for c in across.answered] == ["a"]
    assert [c.cluster for c in across.failed] == ["b"]
    assert across.clusters[1].deployments == {}
    assert across.fleet is not None
    assert across.fleet.requests_per_s == 980.0  # a's alone
    assert across.problems() == ["cluster b: Prometheus at http://prom-b:9090 did not answer"]


def test_a_clusters_numbers_are_those_of_the_deployments_asked_about() -> None:
    collector = refreshed(ScriptedPrometheus({DIGITS: FAST, FACES: SLOW}), {DIGITS, FACES})

    numbers = ClusterNumbers.of("a", collector, {DIGITS})

    assert set(numbers.deployments) == {DIGITS}
    assert numbers.totals is not None
    assert numbers.totals.deployments == 2
    assert (numbers.source, numbers.window_s, numbers.error) == ("prometheus", 30.0, "")


def test_when_no_cluster_answers_there_is_no_fleet_wide_line() -> None:
    source = ScriptedPrometheus({DIGITS: FAST})
    source.down = True
    across = AcrossClusters.of([ClusterNumbers.of("a", refreshed(source, {DIGITS}), {DIGITS})])

    assert across.fleet is None
    assert across.answered == []


def two_clusters() -> AcrossClusters:
    """a: two fast deployments (980 requests/s at 8 ms each); b: one slow (40/s at 400 ms)."""
    a = refreshed(ScriptedPrometheus({DIGITS: FAST, FACES: FAST}), {DIGITS, FACES})
    b = refreshed(ScriptedPrometheus({DIGITS: rates([0.4] * 40)}), {DIGITS})
    return AcrossClusters.of(
        [ClusterNumbers.of("a", a, {DIGITS, FACES}), ClusterNumbers.of("b", b, {DIGITS})]
    )


def test_the_table_has_a_cluster_column_a_line_per_cluster_and_a_fleet_wide_line() -> None:
    rows = report.cluster_table_rows(two_clusters())

    assert report.CLUSTER_HEADERS[:4] == ["CLUSTER", "NAMESPACE", "NAME", "PODS"]
    assert [row[:5] for row in rows] == [
        ["a", "models", "digits", "1", "980.0"],
        ["a", "vision", "faces", "1", "980.0"],
        ["b", "models", "digits", "1", "40.0"],
        ["a", "(cluster)", "2 deployments", "2", "1960.0"],
        ["b", "(cluster)", "1 deployments", "1", "40.0"],
        ["(fleet)", "2 clusters", "3 deployments", "3", "2000.0"],
    ]
    # The fleet's p99, the 1980th of its 2000 requests, is the 20th of b's 40 slow ones:
    # halfway into their bucket (250 ms, 500 ms].
    p99 = report.CLUSTER_HEADERS.index("P99")
    assert rows[-1][p99] == "375ms"


def test_json_names_each_deployments_cluster_and_gives_per_cluster_and_fleet_totals() -> None:
    found = report.clusters_as_json(two_clusters())

    assert [(d["cluster"], d["namespace"], d["name"]) for d in found["deployments"]] == [
        ("a", "models", "digits"),
        ("a", "vision", "faces"),
        ("b", "models", "digits"),
    ]
    a, b = found["clusters"]
    assert (a["cluster"], a["source"], a["error"]) == ("a", "prometheus", None)
    assert a["totals"]["requests_per_s"] == 1960.0
    assert b["totals"]["deployments"] == 1
    assert found["fleet"]["clusters"] == 2
    assert found["fleet"]["requests_per_s"] == 2000.0
    assert found["fleet"]["p99_ms"] == pytest.approx(375.0)


def test_fleet_history_sums_the_clusters_refresh_by_refresh_from_the_newest_back() -> None:
    fast = [totals(FAST), totals(FAST), totals(FAST)]  # three refreshes so far
    slow = [totals(SLOW), totals(SLOW)]  # this cluster's collector started a refresh later

    merged = fleet_history([fast, slow])

    assert len(merged) == 2  # as long as the shortest: every point is both clusters
    assert all(point.requests_per_s == 1000.0 for point in merged)
    assert all(point.numbers.p99_ms == pytest.approx(375.0) for point in merged)
    assert fleet_history([fast, []]) == fleet_history([fast])  # a cluster with none yet
    assert fleet_history([]) == []
