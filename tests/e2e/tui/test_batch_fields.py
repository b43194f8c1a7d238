"""The action dialog's plan fields read with the batch engine's own parsers: the profile's
``[batch]`` and ``[slo]`` fill them, an empty field takes the profile's value, and each wrong
field gets the engine's own words, under that field."""

from __future__ import annotations

from console.batch.plan import SloThresholds
from console.profile import load_profile
from console.profile_reader import parse_quota, parse_waves
from console.tui.widgets.plan_fields import PlanChoice, defaults, read_plan

KWOK = load_profile("kwok")


def test_the_fields_start_from_the_profiles_batch_and_slo_settings() -> None:
    assert defaults(KWOK) == {
        "waves": "1,10%,50%,100%",
        "max-parallel": "10",
        "halt-after": "1",
        "bake": "5",
        "p99-ratio": "1.5",
        "error-percent": "1",
        "on-failure": "rollback-wave",
    }
    choice = read_plan(KWOK, defaults(KWOK))
    assert choice == PlanChoice(KWOK.batch, SloThresholds(1.5, 1.0))


def test_what_the_operator_types_wins_and_empty_fields_take_the_profiles_values() -> None:
    choice = read_plan(
        KWOK,
        {"waves": "1,50%,100%", "bake": "0", "halt-after": "10%", "on-failure": "pause",
         "p99-ratio": "2", "max-parallel": "", "error-percent": ""},
    )  # fmt: skip
    assert isinstance(choice, PlanChoice)
    assert choice.settings.waves == parse_waves("1,50%,100%")
    assert choice.settings.bake_seconds == 0
    assert choice.settings.halt_after == parse_quota("10%")
    assert choice.settings.on_failure == "pause"
    assert choice.settings.max_parallel == KWOK.batch.max_parallel
    assert choice.slo == SloThresholds(2.0, KWOK.slo.error_percent)
    assert choice.settings.wave_sizes(12) == [1, 5, 6]


def test_each_wrong_field_gets_its_own_error_in_the_engines_words() -> None:
    errors = read_plan(
        KWOK,
        {"waves": "50%,1", "max-parallel": "0", "halt-after": "none", "bake": "soon",
         "p99-ratio": "0.5", "error-percent": "150", "on-failure": "retry"},
    )  # fmt: skip
    assert errors == {
        "waves": "waves such as 1,10%,100%: counts then percentages, increasing, ending at 100%",
        "max-parallel": "max parallel: at least 1",
        "halt-after": "a count such as 3 or a percentage such as 10%",
        "bake": "bake seconds: a number, e.g. 1.5",
        "p99-ratio": "the p99 ratio must be >= 1 (1.5 allows p99 up to 1.5 × baseline)",
        "error-percent": "the error threshold is percentage points between 0 and 100",
        "on-failure": "on failure: expected one of rollback-wave, rollback-all, pause, got 'retry'",
    }
