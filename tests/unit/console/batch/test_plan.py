"""Plan arithmetic: waves from counts and percentages, halt thresholds, flags over the profile."""

from __future__ import annotations

import dataclasses

import pytest

from console.batch.plan import Plan, SloThresholds, make_plan, settings_from, thresholds_from
from console.batch.runner import ActionSpec, Target
from console.profile import BatchSettings, Quota, parse_profile
from console.profile_reader import parse_waves

ROLLOUT = ActionSpec("rollout", version=2)
ONE = Quota(count=1)


def targets(count: int) -> list[Target]:
    return [("models", f"d{i:04}") for i in range(count)]


def plan(count: int, waves: str, halt_after: Quota = ONE) -> Plan:
    settings = BatchSettings(waves=parse_waves(waves), halt_after=halt_after)
    return make_plan(ROLLOUT, targets(count), settings)


@pytest.mark.parametrize(
    ("count", "waves", "sizes"),
    [
        (200, "1,10%,100%", [1, 19, 180]),
        (1000, "10%,100%", [100, 900]),
        (5, "1,10%,50%,100%", [1, 2, 2]),  # 10% of 5 rounds up to 1: already covered, dropped
        (1, "1,10%,50%,100%", [1]),
        (3, "5,100%", [3]),  # a canary count larger than the fleet is the whole fleet
        (7, "2,3,100%", [2, 1, 4]),
    ],
)
def test_waves_are_cumulative_and_cover_every_target_once(
    count: int, waves: str, sizes: list[int]
) -> None:
    made = plan(count, waves)
    assert [len(w) for w in made.waves] == sizes
    assert [t for wave in made.waves for t in wave] == targets(count)  # order kept


@pytest.mark.parametrize(
    ("halt_after", "count", "threshold"),
    [
        (Quota(count=3), 200, 3),
        (Quota(percent=5), 200, 10),
        (Quota(percent=5), 10, 1),  # 0.5 rounds up to 1
        (Quota(count=50), 10, 10),
    ],
)
def test_the_halt_threshold_counts_failed_targets(
    halt_after: Quota, count: int, threshold: int
) -> None:
    assert plan(count, "100%", halt_after).halt_threshold == threshold


def test_a_plan_survives_the_journal_round_trip() -> None:
    made = make_plan(
        ActionSpec("rollout", version=7, verify=False),
        targets(30),
        BatchSettings(waves=parse_waves("1,50%,100%"), halt_after=Quota(percent=10)),
        slo=SloThresholds(p99_ratio=2.0, error_percent=0.5),
        stuck_seconds=5,
    )
    assert Plan.from_json(made.to_json()) == made


def test_a_cluster_by_cluster_plan_keeps_its_cluster_and_the_plans_after_it() -> None:
    spec = ActionSpec("rollout", version=2)
    canary = dataclasses.replace(plan(3, "1,100%"), spec=spec, cluster="canary")
    eu_west = dataclasses.replace(plan(10, "50%,100%"), spec=spec, cluster="eu-west")
    first = dataclasses.replace(canary, then=(eu_west,))
    assert Plan.from_json(first.to_json()) == first
    assert first.describe()[0].endswith("of 3 deployments in cluster canary in 2 waves (1, 2)")
    assert first.describe()[-1] == "then cluster eu-west (10)"
    assert "cluster" not in plan(3, "100%").to_json()  # one cluster's journal as before


def test_flags_win_over_the_profile_and_bad_ones_say_what_is_expected() -> None:
    profile = parse_profile(
        "t", {"backend": "local", "batch": {"waves": "1,100%", "bake_seconds": 30}}, source=None
    )
    settings = settings_from(profile, waves="10%,100%", max_parallel=50, halt_after="5%")
    assert settings.waves == (Quota(percent=10), Quota(percent=100))
    assert (settings.max_parallel, settings.halt_after, settings.bake_seconds) == (
        50,
        Quota(percent=5),
        30,
    )
    with pytest.raises(ValueError, match="ending at 100%"):
        settings_from(profile, waves="1,50%")
    with pytest.raises(ValueError, match="at least 1"):
        settings_from(profile, halt_after="0")
    with pytest.raises(ValueError, match="expected one of rollback-wave"):
        settings_from(profile, on_failure="shrug")
    slo = dataclasses.replace(profile.slo, error_percent=2.0)
    thresholds = thresholds_from(dataclasses.replace(profile, slo=slo), p99_ratio=1.2)
    assert thresholds == SloThresholds(p99_ratio=1.2, error_percent=2.0)


def test_a_plan_refuses_what_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        make_plan(ROLLOUT, [], BatchSettings())
    with pytest.raises(ValueError, match="appears twice"):
        make_plan(ROLLOUT, [("m", "a"), ("m", "a")], BatchSettings())
    with pytest.raises(ValueError, match="p99 ratio must be >= 1"):
        SloThresholds(p99_ratio=0.5)


def test_the_plan_says_what_it_will_do() -> None:
    lines = plan(200, "1,10%,100%", Quota(percent=5)).describe()
    assert lines[0] == "rollout to version 2 of 200 deployments in 3 waves (1, 19, 180)"
    assert "halt after 10 failed (5%)" in lines[1]
