"""The HPA's arithmetic (console.autoscaling) against the numbers the Kubernetes controller
gives for the same inputs (pkg/controller/podautoscaler: replica_calculator.go, and
horizontal.go with spec.behavior set)."""

from __future__ import annotations

import pytest

from console.autoscaling import (
    SCALE_UP,
    NoMetrics,
    Stabilizer,
    desired_replicas,
    evaluate,
    metric_replicas,
    scale_down_rules,
)


@pytest.mark.parametrize(
    ("current", "metric", "target", "expected"),
    [
        (2, 10.9, 10, 2),  # x1.09: within the 10 % tolerance
        (2, 9.1, 10, 2),
        (2, 11.5, 10, 3),  # ceil(2 × 1.15)
        (1, 24.1, 10, 3),  # ceil(2.41)
        (4, 2.0, 10, 1),  # ceil(0.8)
        (3, 0.0, 10, 0),  # the bounds, not the formula, keep it at min
    ],
)
def test_desired_replicas_is_ceil_of_current_times_ratio_outside_the_tolerance(
    current: int, metric: float, target: float, expected: int
) -> None:
    assert desired_replicas(current, metric, target) == expected


def test_metric_replicas_averages_the_ready_pods() -> None:
    found = metric_replicas(2, [30.0, 10.0], 10)
    assert (found.replicas, found.ratio, found.average) == (4, 2.0, 20.0)
    assert metric_replicas(2, [10.5, 10.5], 10).replicas == 2  # within the tolerance
    with pytest.raises(NoMetrics):
        metric_replicas(2, [], 10, unready=2)


def test_unready_pods_count_as_idle_on_a_scale_up() -> None:
    # One ready at x3 and one starting: [30, 0] is x1.5 over 2 pods: 3 (the ready one alone
    # would say ceil(3 × 1) = 3 as well; with one more starting, [30, 0, 0] is x1: keep 3).
    assert metric_replicas(2, [30.0], 10, unready=1).replicas == 3
    assert metric_replicas(3, [30.0], 10, unready=2).replicas == 3
    # Two ready at x3 and one starting: [30, 30, 0] is x2 over 3 pods: 6.
    assert metric_replicas(3, [30.0, 30.0], 10, unready=1).replicas == 6
    # One ready at x1.5 and three starting: [15, 0, 0, 0] is x0.375, the other way: keep 4.
    assert metric_replicas(4, [15.0], 10, unready=3).replicas == 4
    # Rebalanced into the tolerance: [21, 0] is x1.05: keep 2.
    assert metric_replicas(2, [21.0], 10, unready=1).replicas == 2
    # Unready pods do not matter on a scale-down: [2] alone is x0.2 over 1 ready pod.
    assert metric_replicas(3, [2.0], 10, unready=2).replicas == 1


def test_pods_without_a_value_count_as_the_target_down_and_as_idle_up() -> None:
    # Down: [2, 10] is x0.6 over 2: ceil(1.2) = 2.
    assert metric_replicas(3, [2.0], 10, missing=1).replicas == 2
    # Up: [40, 0] is x2 over 2: 4.
    assert metric_replicas(2, [40.0], 10, missing=1).replicas == 4
    # Up that the idle value turns down: [12, 0] is x0.6 while the ready one says x1.2: keep.
    assert metric_replicas(2, [12.0], 10, missing=1).replicas == 2


def test_a_scale_down_waits_for_the_window_and_takes_its_highest_recommendation() -> None:
    stabilizer = Stabilizer()
    down = scale_down_rules(60)
    at_zero = stabilizer.normalize(0.0, 3, 1, 1, 5, SCALE_UP, down)
    assert at_zero.replicas == 3
    assert at_zero.able_reason == "ScaleDownStabilized"
    assert stabilizer.normalize(20.0, 3, 2, 1, 5, SCALE_UP, down).replicas == 3
    # At 61 s the 3 (when the window started) is gone; 2 (at 20 s) is the highest left.
    assert stabilizer.normalize(61.0, 3, 1, 1, 5, SCALE_UP, down).replicas == 2
    assert stabilizer.normalize(81.0, 2, 1, 1, 5, SCALE_UP, down).replicas == 1


def test_a_zero_window_scales_down_at_once_and_up_is_never_stabilized() -> None:
    stabilizer = Stabilizer()
    down = scale_down_rules(0)
    assert stabilizer.normalize(0.0, 4, 1, 1, 5, SCALE_UP, down).replicas == 1
    assert stabilizer.normalize(1.0, 1, 3, 1, 5, SCALE_UP, down).replicas == 3


def test_the_default_scale_up_limit_is_the_larger_of_double_and_four_pods_per_15_s() -> None:
    stabilizer = Stabilizer()
    down = scale_down_rules(300)
    first = stabilizer.normalize(0.0, 1, 10, 1, 20, SCALE_UP, down)
    assert (first.replicas, first.limited, first.limited_reason) == (5, True, "ScaleUpLimit")
    stabilizer.scaled(0.0, 1, 5, SCALE_UP, down)
    # Within the same 15 s the period started at 1: 1 + 4 = 5 at most, so it stays.
    assert stabilizer.normalize(10.0, 5, 20, 1, 20, SCALE_UP, down).replicas == 5
    # A new period from 5: max(5 + 4, 5 × 2) = 10.
    assert stabilizer.normalize(16.0, 5, 20, 1, 20, SCALE_UP, down).replicas == 10


def test_the_recommendation_is_clamped_to_min_and_max() -> None:
    stabilizer = Stabilizer()
    down = scale_down_rules(0)
    high = stabilizer.normalize(0.0, 2, 9, 1, 3, SCALE_UP, down)
    assert (high.replicas, high.limited_reason) == (3, "TooManyReplicas")
    low = Stabilizer().normalize(0.0, 4, 0, 2, 6, SCALE_UP, down)
    assert (low.replicas, low.limited_reason) == (2, "TooFewReplicas")
    fits = Stabilizer().normalize(0.0, 2, 3, 1, 6, SCALE_UP, down)
    assert (fits.replicas, fits.limited) == (3, False)


def test_evaluate_says_why_with_its_numbers() -> None:
    up = evaluate(Stabilizer(), 0.0, 1, 1, 4, 10.0, [24.1], scale_down_window=20)
    assert up.rescale
    assert up.reason == "req/s per replica 24.1 > target 10 (x2.41): 1 -> 3"
    assert {c.type: c.reason for c in up.conditions} == {
        "AbleToScale": "SucceededRescale",
        "ScalingActive": "ValidMetricFound",
        "ScalingLimited": "DesiredWithinRange",
    }
    capped = evaluate(Stabilizer(), 0.0, 1, 1, 2, 10.0, [24.1], scale_down_window=20)
    assert capped.reason == (
        "req/s per replica 24.1 > target 10 (x2.41): 1 -> 2 (the metric asks for 3, max 2)"
    )
    quiet = Stabilizer()
    held = evaluate(quiet, 0.0, 3, 1, 4, 10.0, [0.0, 0.0, 0.0], scale_down_window=20)
    assert not held.rescale
    assert {c.type: c.reason for c in held.conditions}["AbleToScale"] == "ScaleDownStabilized"
    down = evaluate(quiet, 21.0, 3, 1, 4, 10.0, [0.0, 0.0, 0.0], scale_down_window=20)
    assert down.reason == (
        "req/s per replica 0.0 < target 10 (x0.00): 3 -> 1 (the metric asks for 0, min 1)"
    )
    # Held by the window: the note says by what.
    window = Stabilizer()
    evaluate(window, 0.0, 4, 1, 4, 10.0, [10.0] * 4, scale_down_window=20)
    evaluate(window, 10.0, 4, 1, 4, 10.0, [5.0] * 4, scale_down_window=20)
    later = evaluate(window, 21.0, 4, 1, 4, 10.0, [0.0] * 4, scale_down_window=20)
    assert later.reason == (
        "req/s per replica 0.0 < target 10 (x0.00): 4 -> 2 "
        "(highest recommendation of the last 20 s: 2; the metric asks for 0)"
    )


def test_evaluate_brings_a_count_outside_the_bounds_back_first() -> None:
    above = evaluate(Stabilizer(), 0.0, 5, 1, 3, 10.0, [100.0] * 5)
    assert (above.desired, above.reason) == (3, "replicas 5 above max 3: 5 -> 3")
    below = evaluate(Stabilizer(), 0.0, 1, 2, 3, 10.0, [])
    assert (below.desired, below.reason) == (2, "replicas 1 below min 2: 1 -> 2")
    unmeasured = evaluate(Stabilizer(), 0.0, 2, 1, 3, 10.0, [], unready=2)
    assert not unmeasured.rescale
    assert ("ScalingActive", "False") in {(c.type, c.status) for c in unmeasured.conditions}
