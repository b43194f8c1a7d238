"""Percentiles from cumulative histogram buckets, checked against numpy on the same samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from console.metrics import histogram
from console.metrics.histogram import from_observations, quantile
from serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS

QUANTILES = (0.5, 0.9, 0.99)


def bucket_of(value: float, bounds: tuple[float, ...]) -> tuple[float, float]:
    """The (lower, upper] bucket a value falls in."""
    lower = 0.0
    for upper in bounds:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf


@pytest.mark.parametrize("q", QUANTILES)
def test_a_percentile_lands_in_the_same_bucket_as_numpys_exact_percentile(q: float) -> None:
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(mean=math.log(0.004), sigma=0.8, size=20_000)
    buckets = from_observations(latencies.tolist(), LATENCY_BUCKETS)

    estimate = quantile(q, buckets)
    exact = float(np.percentile(latencies, q * 100))

    assert estimate is not None
    lower, upper = bucket_of(exact, LATENCY_BUCKETS)
    assert lower <= estimate <= upper


@pytest.mark.parametrize("q", QUANTILES)
def test_uniform_samples_inside_buckets_interpolate_to_numpys_percentile(q: float) -> None:
    # Linear interpolation assumes observations spread evenly inside a bucket: when they do,
    # the estimate is as good as the samples themselves.
    rng = np.random.default_rng(11)
    values = rng.uniform(0.0, 0.1, size=200_000)
    bounds = tuple(round(0.01 * i, 2) for i in range(1, 11))
    estimate = quantile(q, from_observations(values.tolist(), bounds))

    assert estimate == pytest.approx(float(np.percentile(values, q * 100)), abs=0.0005)


@pytest.mark.parametrize("q", QUANTILES)
def test_the_delta_of_two_snapshots_gives_the_percentile_of_the_samples_between(q: float) -> None:
    rng = np.random.default_rng(3)
    fast = rng.uniform(0.001, 0.002, size=5_000)  # before the window
    slow = rng.uniform(0.05, 0.075, size=5_000)  # inside the window: a regression
    before = from_observations(fast.tolist(), LATENCY_BUCKETS)
    after = from_observations(np.concatenate([fast, slow]).tolist(), LATENCY_BUCKETS)

    estimate = quantile(q, histogram.delta(after, before))

    assert estimate == pytest.approx(float(np.percentile(slow, q * 100)), abs=0.0005)


def test_summing_pods_histograms_equals_the_histogram_of_all_their_samples() -> None:
    rng = np.random.default_rng(5)
    pods = [rng.gamma(2.0, scale, size=3_000) for scale in (0.001, 0.003, 0.02)]
    summed = histogram.add(from_observations(p.tolist(), LATENCY_BUCKETS) for p in pods)
    together = from_observations(np.concatenate(pods).tolist(), LATENCY_BUCKETS)

    assert summed == together
    for q in QUANTILES:
        exact = float(np.percentile(np.concatenate(pods), q * 100))
        estimate = quantile(q, summed)
        assert estimate is not None
        lower, upper = bucket_of(exact, LATENCY_BUCKETS)
        assert lower <= estimate <= upper


def test_batch_sizes_use_the_same_arithmetic() -> None:
    sizes = [1] * 50 + [4] * 30 + [16] * 20
    buckets = from_observations([float(s) for s in sizes], BATCH_BUCKETS)

    assert quantile(0.5, buckets) == pytest.approx(1.0)  # in the first bucket (0, 1]
    assert quantile(0.9, buckets) == pytest.approx(8 + 8 * 0.5)  # half-way into (8, 16]


def test_no_observations_means_no_percentile() -> None:
    assert quantile(0.99, from_observations([], LATENCY_BUCKETS)) is None
    assert quantile(0.99, ()) is None


def test_a_percentile_beyond_the_last_finite_bucket_is_that_bucket_bound() -> None:
    # PromQL answers with the highest finite bound; it cannot know how far beyond it lies.
    buckets = from_observations([20.0, 30.0, 40.0], LATENCY_BUCKETS)

    assert quantile(0.99, buckets) == LATENCY_BUCKETS[-1]


def test_a_counter_reset_counts_the_new_process_whole() -> None:
    old = from_observations([0.1] * 100, LATENCY_BUCKETS)
    restarted = from_observations([0.001] * 10, LATENCY_BUCKETS)

    assert histogram.total(histogram.delta(restarted, old)) == 10


def test_rates_that_dip_by_float_noise_are_evened_out() -> None:
    noisy = ((0.1, 5.0), (0.25, 4.999999), (math.inf, 6.0))

    assert histogram.normalized(noisy) == ((0.1, 5.0), (0.25, 5.0), (math.inf, 6.0))
    assert quantile(0.5, noisy) == pytest.approx(0.1 * 3 / 5)


def test_a_quantile_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        quantile(1.5, from_observations([0.1], LATENCY_BUCKETS))
