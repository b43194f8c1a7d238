"""Cumulative histogram arithmetic: deltas, sums and quantiles as PromQL computes them.

A histogram here is a tuple of ``(upper_bound, cumulative_count)`` pairs sorted by bound, the
last bound ``+Inf``: exactly what a Prometheus exposition's ``_bucket{le=...}`` samples hold.
Counts may be floats (per-second rates from Prometheus, deltas over a window).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Buckets = tuple[tuple[float, float], ...]
INF = math.inf


def normalized(buckets: Iterable[tuple[float, float]]) -> Buckets:
    """Sorted by bound, duplicate bounds merged, counts made non-decreasing.

    Rates and deltas of separately sampled buckets can dip by float noise; PromQL's
    histogram_quantile evens such dips out the same way before interpolating.
    """
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    result: list[tuple[float, float]] = []
    highest = 0.0
    for bound in sorted(merged):
        highest = max(highest, merged[bound])
        result.append((bound, highest))
    return tuple(result)


def delta(newer: Buckets, older: Buckets | None) -> Buckets:
    """The observations between two cumulative snapshots of one series.

    A counter that went down means the process restarted: everything in ``newer`` is new
    (Prometheus's rate() treats a reset the same way).
    """
    if older is None or not older:
        return newer
    before = dict(older)
    if newer and newer[-1][1] < before.get(newer[-1][0], 0.0):
        return newer
    return normalized((bound, count - before.get(bound, 0.0)) for bound, count in newer)


def add(histograms: Iterable[Buckets]) -> Buckets:
    """Bucket-wise sum (``sum by (le)``) of histograms of the same metric."""
    return normalized(pair for histogram in histograms for pair in histogram)


def total(buckets: Buckets) -> float:
    """The number of observations: the ``+Inf`` bucket's count."""
    return buckets[-1][1] if buckets else 0.0


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) by linear interpolation inside the bucket it falls in.

    The semantics of PromQL's ``histogram_quantile``: the first bucket starts at 0 (unless its
    bound is ≤ 0), a quantile in the ``+Inf`` bucket is the highest finite bound, and no
    observations means no answer (None).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    buckets = normalized(buckets)
    if len(buckets) < 2 or buckets[-1][0] != INF:
        return None  # PromQL needs at least one finite bucket and +Inf
    count = buckets[-1][1]
    if count <= 0:
        return None
    rank = q * count
    index = next(i for i, (_, cumulative) in enumerate(buckets) if cumulative >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    upper, cumulative = buckets[index]
    if index == 0:
        if upper <= 0:
            return upper
        lower, below = 0.0, 0.0
    else:
        lower, below = buckets[index - 1]
    in_bucket = cumulative - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / in_bucket


def from_observations(values: Sequence[float], bounds: Sequence[float]) -> Buckets:
    """The cumulative histogram a Prometheus client records for ``values`` (``le`` is
    inclusive), for tests and benchmarks."""
    import bisect

    per_bucket = [0] * (len(bounds) + 1)
    for value in values:
        per_bucket[bisect.bisect_left(bounds, value)] += 1
    cumulative = 0.0
    result = []
    for bound, count in zip((*bounds, INF), per_bucket, strict=True):
        cumulative += count
        result.append((float(bound), cumulative))
    return tuple(result)
