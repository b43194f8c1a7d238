"""Who may resume or abort a batch, the same rule for the CLI and the deck."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from console.batch import lifecycle
from console.batch.journal import Journal
from console.batch.plan import make_plan
from console.batch.runner import ActionSpec
from console.core.guard import Guard, Refusal
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves
from tests.unit.console.core.fake_backend import RecordingBackend, as_backend

TARGETS = [("models", "a"), ("models", "b")]


def journal_of(folder: Path, profile: str = "prod", cluster: str | None = None) -> Journal:
    settings = BatchSettings(waves=parse_waves("1,100%"), halt_after=Quota(count=1))
    plan = make_plan(ActionSpec("rollout", version=2), TARGETS, settings)
    plan = dataclasses.replace(plan, cluster=cluster)
    return Journal.create(plan, {"profile": profile, "user": "alice"}, folder)


def guard(*, read_only: bool = False, forbidden: frozenset[tuple[str, str]] = frozenset()) -> Guard:
    return Guard(as_backend(RecordingBackend(forbidden=forbidden)), read_only, "prod", "alice")


def test_a_halted_batch_may_be_resumed_and_aborted_by_its_profile(tmp_path: Path) -> None:
    journal = journal_of(tmp_path)
    journal.append("state", state="halted", reason="1 failed")
    state = journal.replay()
    lifecycle.check("resume", journal, state, guard(), ("models",))
    lifecycle.check("abort", journal, state, guard(), ())  # (): every namespace is watched


def test_a_read_only_profile_may_neither_resume_nor_abort(tmp_path: Path) -> None:
    journal = journal_of(tmp_path)
    with pytest.raises(Refusal, match="read-only"):
        lifecycle.check("abort", journal, journal.replay(), guard(read_only=True), ())


def test_another_profile_is_told_which_one_started_the_batch(tmp_path: Path) -> None:
    journal = journal_of(tmp_path, profile="staging")
    with pytest.raises(lifecycle.BatchRefused, match="use --profile staging to resume it"):
        lifecycle.check("resume", journal, journal.replay(), guard(), ())


def test_targets_in_a_namespace_the_session_does_not_watch_are_refused(tmp_path: Path) -> None:
    journal = journal_of(tmp_path)
    with pytest.raises(lifecycle.BatchRefused, match="models, which this profile does not watch"):
        lifecycle.check("resume", journal, journal.replay(), guard(), ("other",))


def test_a_finished_batch_has_nothing_to_resume_or_abort(tmp_path: Path) -> None:
    journal = journal_of(tmp_path)
    journal.append("state", state="done", reason="")
    for verb in ("resume", "abort"):
        with pytest.raises(lifecycle.BatchRefused, match=f"is done; nothing to {verb}"):
            lifecycle.check(verb, journal, journal.replay(), guard(), ())


def test_an_abort_needs_rbac_for_the_rollbacks_it_sends(tmp_path: Path) -> None:
    journal = journal_of(tmp_path)
    refused = guard(forbidden=frozenset({("patch", "models")}))
    with pytest.raises(Refusal, match="may not patch deployments in namespace models"):
        lifecycle.check("abort", journal, journal.replay(), refused, ())
    assert lifecycle.action_of("abort", journal.replay().plan) == "rollback"
    assert lifecycle.action_of("resume", journal.replay().plan) == "rollout"


def test_a_batch_of_one_cluster_is_resumed_only_in_that_cluster(tmp_path: Path) -> None:
    # The same namespace and name in another cluster is another deployment.
    journal = journal_of(tmp_path, cluster="eu-west")
    journal.append("state", state="halted", reason="1 failed")
    with pytest.raises(lifecycle.BatchRefused, match="use --cluster eu-west to resume it"):
        lifecycle.check("resume", journal, journal.replay(), guard(), (), "canary")
    lifecycle.check("resume", journal, journal.replay(), guard(), (), "eu-west")
