"""SLO gates: each deployment against its own baseline, with a sentence saying why it failed."""

from __future__ import annotations

from console.batch.gates import SloReading, violation
from console.batch.plan import SloThresholds

GATES = SloThresholds(p99_ratio=1.5, error_percent=1.0)


def test_a_p99_above_the_ratio_of_its_own_baseline_fails_with_the_numbers() -> None:
    why = violation(GATES, SloReading(120.0, 0.0), SloReading(312.0, 0.0))
    assert why == "p99 312 ms > 1.5 × baseline 120 ms"


def test_within_the_ratio_passes_even_when_slower_than_another_deployment() -> None:
    assert violation(GATES, SloReading(400.0, 0.0), SloReading(590.0, 0.0)) is None


def test_errors_may_rise_by_the_allowed_points_and_no_more() -> None:
    assert violation(GATES, SloReading(10.0, 0.5), SloReading(10.0, 1.5)) is None
    why = violation(GATES, SloReading(10.0, 0.5), SloReading(10.0, 2.1))
    assert why == "errors 2.1 % > baseline 0.5 % + 1 %"


def test_no_numbers_is_no_verdict() -> None:
    assert violation(GATES, None, SloReading(999.0, 50.0)) is None
    assert violation(GATES, SloReading(10.0, 0.0), None) is None
    assert violation(GATES, SloReading(None, None), SloReading(999.0, None)) is None


def test_a_gate_left_out_is_not_checked() -> None:
    only_errors = SloThresholds(p99_ratio=None, error_percent=1.0)
    assert violation(only_errors, SloReading(10.0, 0.0), SloReading(1000.0, 0.0)) is None


def test_sub_millisecond_numbers_keep_two_significant_digits_in_the_reason() -> None:
    why = violation(GATES, SloReading(0.42, 0.0), SloReading(7.25, 0.0))
    assert why == "p99 7.2 ms > 1.5 × baseline 0.42 ms"
