"""The timeline's rules, on hand-made revisions, audit lines and ReplicaSets: who made a
revision, when, what it joins with, what undoing it would do, and what is refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console.audit import AuditEntry, TargetResult
from console.backends.kubernetes.revisions_memo import RevisionsMemo
from console.backends.kubernetes.rollout import history
from console.batch.gates import SloReading
from console.batch.journal import Replay
from console.batch.plan import SloThresholds, make_plan
from console.batch.runner import ActionSpec
from console.changes.effect import effect_of
from console.changes.model import Affected, Change, Kind
from console.changes.timeline import ClusterFacts, Sources, TimelineMemo, latest_on, timeline
from console.changes.undo import UndoRefused, find, plan_undo
from console.metrics.readings import DeploymentMetrics, LatestNumbers
from console.model import DeploymentState, EventInfo, ModelDeployment, RevisionInfo
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves
from console.views.changes import build_row, parse_change_filter

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEY = ("models", "digits")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def revision(
    number: int, version: str, seconds: float, cause: str = "", via: bool = True
) -> RevisionInfo:
    return RevisionInfo(
        number,
        cause,
        "digits",
        version,
        ("predictor:1",),
        1,
        created=at(seconds),
        via_fleetdeck=via,
    )


def line(action: str, seconds: float, **parameters: Any) -> AuditEntry:
    return AuditEntry(
        time=at(seconds),
        user="alice",
        profile="prod",
        context="ctx",
        action=action,
        targets=("models/digits",),
        parameters=parameters,
        results=(TargetResult("models/digits", True, "ok"),),
    )


def changes_of(
    revisions: list[RevisionInfo], audit: Sequence[AuditEntry] = (), **more: Any
) -> list[Change]:
    facts = ClusterFacts("", {KEY: revisions})
    return timeline(Sources([facts], audit=audit, profile="prod", only_cluster="default", **more))


# -- Kubernetes revisions: who made them, and when ----------------------------------------------
def replicaset(
    number: int, created: str, *, stamp: str = "", reused: bool = False
) -> dict[str, Any]:
    annotations = {"deployment.kubernetes.io/revision": str(number)}
    if stamp:
        annotations["fleetdeck.io/changed-at"] = stamp
        annotations["kubernetes.io/change-cause"] = (
            f"rollout digits v{number} by alice via fleetdeck"
        )
    if reused:
        annotations["deployment.kubernetes.io/revision-history"] = "1"
    return {
        "metadata": {
            "name": f"digits-{number}",
            "uid": f"rs-{number}",
            "creationTimestamp": created,
            "annotations": annotations,
            "ownerReferences": [{"kind": "Deployment", "uid": "d-1"}],
        },
        "spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": []}}},
        "status": {"replicas": 0},
    }


def deployment(revision_now: int, progressed: str) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": "d-1",
            "name": "digits",
            "annotations": {"deployment.kubernetes.io/revision": str(revision_now)},
        },
        "status": {"conditions": [{"type": "Progressing", "lastUpdateTime": progressed}]},
    }


def test_a_revision_with_a_newer_stamp_is_fleetdecks_and_dated_by_it() -> None:
    found = history(
        deployment(2, "2026-12-04T12:05:00Z"),
        [
            replicaset(1, "2026-12-04T12:00:00Z", stamp="2026-12-04T11:59:59.500+00:00"),
            replicaset(2, "2026-12-04T12:01:01Z", stamp="2026-12-04T12:01:00.250+00:00"),
        ],
    )
    assert [(r.number, r.via_fleetdeck, r.created, r.approximate) for r in found] == [
        (1, True, at(-0.5), False),
        (2, True, at(60.25), False),
    ]


def test_a_revision_carrying_a_copy_of_an_older_stamp_was_made_by_another_client() -> None:
    # kubectl set image: the controller copied the Deployment's annotations, stamp included.
    found = history(
        deployment(2, "2026-12-04T12:05:00Z"),
        [
            replicaset(1, "2026-12-04T12:00:00Z", stamp="2026-12-04T12:00:00+00:00"),
            replicaset(2, "2026-12-04T12:03:00Z", stamp="2026-12-04T12:00:00+00:00"),
        ],
    )
    assert (found[1].via_fleetdeck, found[1].created, found[1].approximate) == (
        False,
        at(180),
        False,
    )


def test_a_reused_replicaset_is_dated_by_the_deployments_last_progress_as_an_estimate() -> None:
    # kubectl rollout undo: revision 1's ReplicaSet became revision 3, its stamp as old as it.
    found = history(
        deployment(3, "2026-12-04T12:07:00Z"),
        [
            replicaset(2, "2026-12-04T12:01:00Z", stamp="2026-12-04T12:01:00+00:00"),
            replicaset(3, "2026-12-04T12:00:00Z", stamp="2026-12-04T12:00:00+00:00", reused=True),
        ],
    )
    assert (found[1].via_fleetdeck, found[1].created, found[1].approximate) == (
        False,
        at(420),
        True,
    )


# -- joining the sources ------------------------------------------------------------------------
def test_a_revision_and_its_audit_line_are_one_change_said_by_the_line() -> None:
    revisions = [
        revision(1, "1", 0, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "2", 60, "rollout digits v2 by alice via fleetdeck"),
    ]
    audit = [line("rollout", 61, version=2, before={"revision": 1, "replicas": 1})]
    newest, oldest = changes_of(revisions, audit)
    assert (newest.kind, newest.who, newest.time, newest.what) == (
        Kind.ROLLOUT,
        "alice",
        at(61),
        "rollout digits v2",
    )
    assert (newest.before, newest.after) == ("digits v1 (rev 1)", "digits v2 (rev 2)")
    assert newest.affected[0].undo == ActionSpec("rollback", to_revision=1)
    # Created with no audit line here: undone by nobody but a person, by hand.
    assert (oldest.kind, oldest.affected[0].undo) == (Kind.DEPLOY, None)
    assert oldest.affected[0].why_not == "not created through fleetdeck here: delete it by hand"


def test_a_change_made_outside_fleetdeck_says_so_and_names_nobody() -> None:
    revisions = [
        revision(1, "1", 0, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "1", 30, via=False),
    ]
    edit = changes_of(revisions)[0]
    assert (edit.kind, edit.who, edit.via_fleetdeck) == (Kind.EDIT, "", False)
    assert build_row(edit, None).cells[3] == "? (not via fleetdeck)"


def test_a_kubectl_revision_dated_to_the_second_is_never_older_than_the_one_before() -> None:
    revisions = [
        revision(1, "1", 0.4, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "1", 0, via=False),
    ]
    assert [c.kind for c in changes_of(revisions)] == [Kind.EDIT, Kind.DEPLOY]


def test_a_scale_line_is_a_change_undone_by_scaling_back_to_what_it_had() -> None:
    scale = changes_of([], [line("scale", 5, replicas=4, before={"replicas": 2, "revision": 1})])[0]
    assert (scale.what, scale.before, scale.after) == ("scale to 4", "2 replicas", "4 replicas")
    assert scale.affected[0].undo == ActionSpec("scale", replicas=2)
    assert scale.affected[0].expect_replicas == 4


def test_dry_runs_failed_attempts_and_other_profiles_are_no_changes() -> None:
    dry = line("scale", 1, replicas=3)
    dry = AuditEntry(**{**dry.__dict__, "dry_run": True})
    failed = AuditEntry(
        **{**line("scale", 2).__dict__, "results": (TargetResult("models/digits", False, "403"),)}
    )
    other = AuditEntry(**{**line("scale", 3).__dict__, "profile": "staging"})
    assert changes_of([], [dry, failed, other]) == []


def test_one_command_over_two_deployments_is_one_change() -> None:
    first = line("scale", 1, replicas=3, before={"replicas": 1})
    second = AuditEntry(
        **{
            **line("scale", 2, replicas=3, before={"replicas": 1}).__dict__,
            "targets": ("models/iris",),
            "results": (TargetResult("models/iris", True, "ok"),),
        }
    )
    (change,) = changes_of([], [first, second])
    assert change.targets == "models/digits +1"


def test_a_batchs_revisions_fold_into_the_batch() -> None:
    plan = make_plan(
        ActionSpec("rollout", version=2),
        [KEY],
        BatchSettings(
            waves=parse_waves("100%"),
            max_parallel=1,
            halt_after=Quota(count=1),
            bake_seconds=0,
            on_failure="pause",
        ),
    )
    batch = Replay(
        "20261204-120000-abcd",
        plan,
        {"profile": "prod", "user": "bob", "created": at(59).isoformat()},
    )
    revisions = [
        revision(1, "1", 0, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "2", 60, "rollout digits v2 by bob via fleetdeck"),
    ]
    audit = [line("rollout", 60.5, version=2, batch=batch.id)]
    kinds = [(c.kind, c.who) for c in changes_of(revisions, audit, batches=[batch])]
    assert kinds == [(Kind.BATCH, "bob"), (Kind.DEPLOY, "alice")]


def test_the_latest_change_of_a_deployment_skips_warnings() -> None:
    revisions = [
        revision(1, "1", 0, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "2", 60, "rollout digits v2 by alice via fleetdeck"),
    ]
    latest = latest_on(changes_of(revisions), "", KEY)
    assert latest is not None
    assert latest.what == "rollout digits v2"


# -- effects ------------------------------------------------------------------------------------
def metrics(seconds: float, p99: float, errors: float = 0.0) -> DeploymentMetrics:
    numbers = LatestNumbers(
        requests_per_s=10.0,
        error_percent=errors,
        p50_ms=p99 / 2,
        p90_ms=p99,
        p99_ms=p99,
        batch_size=None,
        queue_depth=0.0,
        precomputed_hit_ratio=None,
    )
    return DeploymentMetrics(
        *KEY, at=at(seconds).timestamp(), numbers=numbers, pods=1, pods_failed=0, span_s=3.0
    )


def test_a_change_followed_by_p99_over_the_gate_ratio_is_a_regression() -> None:
    rollout = changes_of([revision(1, "1", 0), revision(2, "2", 60)])[0]
    series = [metrics(50, 4.0), metrics(58, 4.0), metrics(66, 9.0), metrics(70, 12.0)]
    effect = effect_of(rollout, lambda c, k: series, SloThresholds(p99_ratio=1.5), now=at(80))
    assert effect is not None
    assert effect.before == SloReading(4.0, 0.0)
    assert effect.regression == "p99 9 ms > 1.5 × baseline 4 ms"


def test_a_change_with_no_numbers_before_it_has_no_effect_and_a_young_one_is_measuring() -> None:
    rollout = changes_of([revision(1, "1", 0), revision(2, "2", 60)])[0]
    assert effect_of(rollout, lambda c, k: [], SloThresholds(), now=at(80)) is None
    young = effect_of(rollout, lambda c, k: [metrics(59, 4.0)], SloThresholds(), now=at(61))
    assert young is not None
    assert (young.after, young.measuring, young.regressed) == (None, True, False)


# -- undo ---------------------------------------------------------------------------------------
def row(revision_now: int, replicas: int = 1) -> ModelDeployment:
    return ModelDeployment(
        "digits",
        "models",
        "digits",
        "2",
        replicas,
        replicas,
        replicas,
        replicas,
        DeploymentState.AVAILABLE,
        "",
        revision_now,
        None,
    )


def test_undo_rolls_back_while_nothing_changed_since_and_refuses_after() -> None:
    rollout = changes_of([revision(1, "1", 0), revision(2, "2", 60)])[0]
    plan = plan_undo(rollout, lambda c, k: row(2))
    assert [s.spec for s in plan.steps] == [ActionSpec("rollback", to_revision=1)]
    assert plan.lines()[1].startswith(
        "  models/digits: roll back to revision 1 (digits v1 (rev 1))"
    )
    with pytest.raises(
        UndoRefused, match="changed since: it is at revision 3, this change left revision 2"
    ):
        plan_undo(rollout, lambda c, k: row(3))
    with pytest.raises(UndoRefused, match="it no longer exists"):
        plan_undo(rollout, lambda c, k: None)


def test_what_cannot_be_undone_says_why() -> None:
    warning = Change(
        "abc1234",
        T0,
        Kind.WARNING,
        "",
        False,
        "BackOff",
        (Affected("", *KEY),),
        why_not="a warning is what happened, not a change to undo",
    )
    with pytest.raises(UndoRefused, match="a warning is what happened"):
        plan_undo(warning, lambda c, k: row(1))


@pytest.mark.parametrize("typed", ["../../etc", "abc", "zzzz", "$(id)", ""])
def test_only_hex_ids_of_four_to_seven_digits_are_looked_up(typed: str) -> None:
    with pytest.raises(UndoRefused, match="is not a change id"):
        find([], typed)


def test_an_id_prefix_finds_one_change_and_an_ambiguous_one_is_refused() -> None:
    one = Change("abcd123", T0, Kind.SCALE, "a", True, "scale to 2")
    two = Change("abcd456", T0, Kind.SCALE, "a", True, "scale to 3")
    assert find([one, two], "ABCD1") is one
    with pytest.raises(UndoRefused, match="ambiguous: abcd123, abcd456"):
        find([one, two], "abcd")


# -- the filter ---------------------------------------------------------------------------------
def test_the_filter_takes_text_and_selectors_on_the_changes_fields() -> None:
    revisions = [
        revision(1, "1", 0, "deploy digits v1 by alice via fleetdeck"),
        revision(2, "1", 30, via=False),
    ]
    rows = [build_row(c, None) for c in changes_of(revisions)]

    def kinds(text: str) -> list[str]:
        return [r.change.kind.value for r in rows if parse_change_filter(text).test(r)]

    assert kinds("via=other") == ["edit"]
    assert kinds("kind!=edit alice") == ["deploy"]
    assert kinds("dep[l]oy") == ["deploy"]  # a regular expression
    assert parse_change_filter("kind in (").error


# -- what the review of the first version found -------------------------------------------------
def test_a_line_written_on_another_kube_context_is_another_fleets() -> None:
    staging = AuditEntry(
        **{**line("scale", 5, replicas=3, before={"replicas": 1}).__dict__, "context": "staging"}
    )
    assert changes_of([], [staging], contexts={"": "ctx"}) == []
    assert len(changes_of([], [staging], contexts={"": "staging"})) == 1


@pytest.mark.parametrize("replicas", [-1, True, "2", None])
def test_a_line_whose_state_before_is_no_count_is_shown_but_not_undone(replicas: object) -> None:
    (scale,) = changes_of([], [line("scale", 5, replicas=3, before={"replicas": replicas})])
    assert scale.affected[0].undo is None


def test_a_stamp_from_the_future_or_much_older_than_its_replicaset_is_not_fleetdecks() -> None:
    found = history(
        deployment(3, "2026-12-04T12:30:00Z"),
        [
            replicaset(1, "2026-12-04T12:00:00Z", stamp="2026-12-04T12:00:00+00:00"),
            replicaset(2, "2026-12-04T12:01:00Z", stamp="2099-01-01T00:00:00+00:00"),
            # Its earlier revision (with this stamp) is gone; the ReplicaSet came 20 min later.
            replicaset(3, "2026-12-04T12:25:00Z", stamp="2026-12-04T12:05:00+00:00"),
        ],
    )
    assert [r.via_fleetdeck for r in found] == [True, False, False]


def test_undoing_a_pause_is_refused_once_it_was_resumed_since() -> None:
    pause = changes_of([], [line("pause", 5, before={"paused": False, "replicas": 1})])[0]
    assert pause.affected[0].undo == ActionSpec("resume")
    with pytest.raises(
        UndoRefused, match="changed since: it is running, this change left it paused"
    ):
        plan_undo(pause, lambda c, k: row(1))


def test_a_member_of_a_change_finds_the_whole_change() -> None:
    first = line("scale", 1, replicas=3, before={"replicas": 1})
    other = AuditEntry(
        **{
            **line("scale", 2, replicas=3, before={"replicas": 1}).__dict__,
            "targets": ("models/iris",),
            "results": (TargetResult("models/iris", True, "ok"),),
        }
    )
    alone = changes_of([], [other])[0]  # as a view of iris alone names it
    (both,) = changes_of([], [first, other])
    assert find([both], alone.id) is both


def test_a_hostile_warning_message_reaches_the_table_escaped() -> None:
    event = EventInfo(at(3), "Warning", "BackOff", "Pod/x", "\x1b]0;owned\x07\x1b[2J\nfake row", 1)
    facts = ClusterFacts("", {KEY: []}, [(KEY, event)])
    (warning,) = timeline(Sources([facts], profile="prod", only_cluster="default"))
    what = build_row(warning, None).cell("WHAT")
    assert "\x1b" not in what
    assert "\n" not in what
    assert what == "BackOff: Pod/x: \\x1b]0;owned\\x07\\x1b[2J\\nfake row"


# -- rebuilding with what the last build kept ---------------------------------------------------
def test_a_rebuild_with_the_memo_is_the_timeline_built_afresh_and_reuses_the_untouched() -> None:
    other = ("models", "fraud")
    digits = [revision(1, "1", 0), revision(2, "2", 60, "rollout digits v2 by alice via fleetdeck")]
    fraud = [revision(1, "1", 10, via=False)]
    audit = [line("rollout", 61, version=2, before={"revision": 1}), line("scale", 90, replicas=3)]
    memo = TimelineMemo()

    def build(histories: dict[Any, list[RevisionInfo]], lines: list[AuditEntry]) -> list[Change]:
        sources = Sources(
            [ClusterFacts("", histories)], audit=lines, profile="prod", only_cluster="default"
        )
        fresh = timeline(sources)
        kept = timeline(sources, memo)
        assert kept == fresh
        return kept

    build({KEY: digits, other: fraud}, audit)
    fraud_built = memo.deployments[("", other)]
    # A rollout of digits (its revision and its line) and another line: digits is made again,
    # fraud is not, and the timeline is the one a fresh build makes.
    digits = [*digits, revision(3, "3", 120, "rollout digits v3 by alice via fleetdeck")]
    audit = [*audit, line("rollout", 121, version=3, before={"revision": 2})]
    changes = build({KEY: digits, other: fraud}, audit)
    assert memo.deployments[("", other)] is fraud_built
    assert changes[0].what == "rollout digits v3"
    assert changes[0].who == "alice"
    # A line that joins no revision becomes a change of its own; the joined ones do not.
    audit = [*audit, line("pause", 150, before={"paused": False})]
    changes = build({KEY: digits, other: fraud}, audit)
    assert [c.kind for c in changes[:2]] == [Kind.PAUSE, Kind.ROLLOUT]
    # A deployment gone is gone from the timeline and from the memo.
    build({KEY: digits}, audit)
    assert ("", other) not in memo.deployments


def test_the_kubernetes_revisions_are_converted_again_only_for_a_changed_deployment() -> None:
    converted: list[str] = []

    def convert(deployment: dict[str, Any], sets: Sequence[dict[str, Any]]) -> list[RevisionInfo]:
        converted.append(deployment["metadata"]["uid"])
        return [revision(n + 1, str(n + 1), n) for n in range(len(sets))]

    memo = RevisionsMemo(convert)
    first, second = ({"metadata": {"uid": uid}} for uid in ("u1", "u2"))
    owned = {"u1": [{"rs": 1}], "u2": [{"rs": 2}]}

    def read(*deployments: dict[str, Any]) -> dict[str, list[RevisionInfo]]:
        found = memo.revisions(
            deployments, lambda d: owned[d["metadata"]["uid"]], lambda d: d["metadata"]["uid"]
        )
        return {d["metadata"]["uid"]: revisions for d, revisions in found}

    before = read(first, second)
    owned["u2"] = [*owned["u2"], {"rs": 3}]  # a new ReplicaSet: the watch's new dict
    after = read(first, second)
    assert converted == ["u1", "u2", "u2"]
    assert after["u1"] is before["u1"]
    assert len(after["u2"]) == 2
    second = {"metadata": {"uid": "u2"}}  # the Deployment itself replaced by a watch event
    read(first, second)
    assert converted == ["u1", "u2", "u2", "u2"]


def test_a_line_naming_two_deployments_joins_the_same_revision_with_the_memo_as_afresh() -> None:
    """An older fleetdeck wrote one line for ``rollout a b``: which revision it joins depends on
    the other deployment, and a rebuild with the memo must follow it."""
    a, b = ("models", "a"), ("models", "b")
    cause = "rollout digits v2 by bob via fleetdeck"
    both = AuditEntry(
        time=at(61),
        user="alice",
        profile="prod",
        context="ctx",
        action="rollout",
        targets=("models/a", "models/b"),
        parameters={"version": 2},
        results=(TargetResult("models/a", True, "ok"), TargetResult("models/b", True, "ok")),
    )
    history = [revision(1, "1", 0), revision(2, "2", 60, cause)]
    memo = TimelineMemo()

    def build(histories: dict[Any, list[RevisionInfo]]) -> list[Change]:
        sources = Sources(
            [ClusterFacts("", histories)], audit=[both], profile="prod", only_cluster="default"
        )
        kept = timeline(sources, memo)
        assert kept == timeline(sources)
        return kept

    build({a: history, b: list(history)})
    # a is deleted: b's revision now joins the line (alice's), and no audit row is left over.
    changes = build({b: list(history)})
    assert [c.who for c in changes if c.kind is Kind.ROLLOUT] == ["alice"]
    assert not [c for c in changes if c.id == change_id_of_line(both)]


def change_id_of_line(entry: AuditEntry) -> str:
    from console.changes.timeline import _audit_change

    return _audit_change(entry, "").id


def test_an_audit_log_read_again_from_its_start_rebuilds_what_it_joined() -> None:
    """Cut or rotated, the log is read anew into equal but new lines: the memo must not take
    them for the ones it kept."""
    history = [revision(1, "1", 0), revision(2, "2", 60, "rollout digits v2 by bob via fleetdeck")]
    rollout = line("rollout", 61, version=2, before={"revision": 1})
    memo = TimelineMemo()

    def build(lines: list[AuditEntry]) -> list[Change]:
        sources = Sources(
            [ClusterFacts("", {KEY: history})], audit=lines, profile="prod", only_cluster="default"
        )
        kept = timeline(sources, memo)
        assert kept == timeline(sources)
        return kept

    build([rollout])
    again = AuditEntry.from_json(rollout.to_json())
    assert again == rollout
    assert again is not rollout
    changes = build([again])
    assert changes[0].who == "alice"
