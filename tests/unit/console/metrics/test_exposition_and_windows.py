"""A predictor's /metrics page into counters, and counters into rates over a sliding window."""

from __future__ import annotations

import pytest

from console.metrics.exposition import ExpositionError, parse_counters
from console.metrics.histogram import quantile
from console.metrics.readings import LatestNumbers, PodCounters
from console.metrics.window import PodWindow
from serving.metrics import PredictorMetrics


def page(metrics: PredictorMetrics) -> str:
    return metrics.exposition().decode()


def test_prediction_requests_count_and_only_5xx_are_errors() -> None:
    metrics = PredictorMetrics()
    for _ in range(7):
        metrics.observe_request("v1", 200, 0.004)
    metrics.observe_request("v2", 200, 0.02)
    metrics.observe_request("v1", 400, 0.001)  # the client's mistake
    metrics.observe_request("v2", 503, 0.001)
    metrics.observe_request("health", 200)  # probes are not traffic
    metrics.observe_request("metrics", 200)

    counters = parse_counters(page(metrics))

    assert counters.requests == 10
    assert counters.errors == 1
    assert counters.latency[-1][1] == 10  # both protocols' histograms, summed by le
    assert quantile(0.5, counters.latency) == pytest.approx(0.004, abs=0.001)


def test_batches_and_queue_depth_are_read() -> None:
    metrics = PredictorMetrics()
    metrics.observe_batch(4, 0.001)
    metrics.observe_batch(12, 0.002)
    metrics.queue_depth.set(5)

    counters = parse_counters(page(metrics))

    assert (counters.batch_sum, counters.batch_count, counters.queue_depth) == (16, 2, 5)
    assert counters.precomputed_hits is None or counters.precomputed_hits == 0


def test_precomputed_hits_and_misses_give_a_hit_ratio() -> None:
    metrics = PredictorMetrics()
    metrics.observe_precomputed(hits=9, misses=1, fallbacks=3)
    before = parse_counters(page(metrics))
    metrics.observe_precomputed(hits=30, misses=10)
    window = PodWindow(30.0)
    window.add(0.0, before)
    window.add(10.0, parse_counters(page(metrics)))

    numbers = LatestNumbers.of(window.rates())

    assert numbers.precomputed_hit_ratio == pytest.approx(0.75)


def test_a_page_without_predictor_metrics_is_refused_with_the_reason() -> None:
    with pytest.raises(ExpositionError, match="no fleetdeck_predictor_"):
        parse_counters("# HELP up x\n# TYPE up gauge\nup 1\n")


def counters(requests: float, errors: float = 0.0, queue: float = 0.0) -> PodCounters:
    return PodCounters(
        requests=requests,
        errors=errors,
        latency=((0.01, requests), (float("inf"), requests)),
        batch_sum=requests,
        batch_count=requests,
        queue_depth=queue,
    )


def test_a_window_rate_is_the_increase_over_the_time_it_covers() -> None:
    window = PodWindow(10.0)
    for second in range(0, 31, 2):  # 5 requests/s, 1 error/s
        window.add(float(second), counters(5.0 * second, 1.0 * second, queue=3))

    rates = window.rates()

    assert rates.requests == pytest.approx(5.0)
    assert rates.errors == pytest.approx(1.0)
    assert rates.queue_depth == 3  # a gauge: the latest value
    assert rates.span_s == pytest.approx(10.0)
    assert len(window.samples) <= 7  # the ring holds the window, not the whole past


def test_a_restarted_process_counts_from_zero_instead_of_going_negative() -> None:
    window = PodWindow(10.0)
    window.add(0.0, counters(1000.0))
    window.add(5.0, counters(20.0))  # the counters went down: a restart

    assert window.rates().requests == pytest.approx(20.0 / 5.0)


def test_one_sample_gives_no_rate_yet() -> None:
    window = PodWindow(10.0)
    window.add(0.0, counters(100.0, queue=2))

    rates = window.rates()

    assert (rates.requests, rates.span_s, rates.queue_depth) == (0.0, 0.0, 2)
    assert LatestNumbers.of(rates).p99_ms is None
