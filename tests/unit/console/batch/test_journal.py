"""The journal: durable records, and replay that tells where a killed batch stood."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.batch.journal import (
    BatchState,
    Journal,
    JournalError,
    Step,
    describe,
    list_journals,
)
from console.batch.plan import make_plan
from console.batch.runner import ActionSpec, Target
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves

A, B, C, D = (("models", name) for name in "abcd")


def new_journal(folder: Path, halt_after: int = 2) -> Journal:
    settings = BatchSettings(waves=parse_waves("1,100%"), halt_after=Quota(count=halt_after))
    plan = make_plan(ActionSpec("rollout", version=2), [A, B, C, D], settings)
    return Journal.create(plan, {"profile": "kwok", "user": "oncall"}, folder)


def result(journal: Journal, target: Target, ok: bool, purpose: str = "apply") -> None:
    journal.append(
        "result", target=list(target), purpose=purpose, ok=ok, message="403" if not ok else "ok"
    )


def test_a_batch_killed_between_send_and_answer_shows_the_step_as_sent(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    journal.append("state", state="running", reason="")
    journal.append("wave", wave=0, event="start")
    journal.send("apply", "rollout", [A], revisions={"models/a": 4})
    state = journal.replay()
    assert state.state is BatchState.RUNNING
    assert state.wave == 0
    assert state.targets[A].step is Step.SENT
    assert state.targets[A].revision == 4
    assert state.in_steps(Step.PENDING) == [B, C, D]


def test_replay_follows_answers_failures_and_undo(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    journal.append("wave", wave=0, event="start")
    journal.send("apply", "rollout", [A], revisions={"models/a": 1})
    result(journal, A, True)
    journal.append("healthy", targets=[list(A)])
    journal.append("wave", wave=0, event="passed")
    journal.append("wave", wave=1, event="start")
    journal.send("apply", "rollout", [B, C, D], revisions={})
    result(journal, B, True)
    result(journal, C, False)
    journal.append("failed", target=list(B), reason="p99 312 ms > 1.5 × baseline 120 ms")
    journal.send("rollback", "rollback", [B])
    state = journal.replay()
    assert state.waves_passed == {0}
    assert state.targets[A].step is Step.HEALTHY
    assert state.targets[B].step is Step.UNDOING
    assert state.targets[B].undo == "rollback"
    assert state.targets[B].reason == "p99 312 ms > 1.5 × baseline 120 ms"
    assert (state.targets[C].step, state.targets[C].reason) == (Step.FAILED, "403")
    assert state.targets[D].step is Step.SENT
    assert state.failed == {B, C}
    assert state.halted_by_failures
    result(journal, B, True, purpose="rollback")
    assert journal.replay().targets[B].step is Step.ROLLED_BACK


def test_a_halt_acknowledges_the_failures_so_far(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    journal.send("apply", "rollout", [A], revisions={})
    result(journal, A, False)
    journal.append("state", state="halted", reason="1 failed")
    state = journal.replay()
    assert (state.state, state.failures_acknowledged) == (BatchState.HALTED, 1)


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    journal.send("apply", "rollout", [A], revisions={})
    with journal.path.open("ab") as handle:
        handle.write(b'{"kind":"result","target":["models","a"],"purp')
    assert journal.replay().targets[A].step is Step.SENT


def test_only_one_process_runs_a_batch_and_the_other_is_told_who(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    other = Journal.open(journal.id, tmp_path)
    assert other.holder() is None
    with journal.running():
        assert other.holder() is not None
        with pytest.raises(JournalError, match="is being run by process"), other.running():
            pass
    assert other.holder() is None


def test_requests_to_halt_or_abort_wait_in_the_folder(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    assert journal.requested() is None
    journal.request("halt")
    journal.request("abort")
    assert journal.requested() == "abort"  # the stronger wins
    journal.clear_requests()
    assert journal.requested() is None


def test_batches_are_listed_oldest_first_and_bad_ids_are_refused(tmp_path: Path) -> None:
    first, second = new_journal(tmp_path), new_journal(tmp_path)
    assert [j.id for j in list_journals(tmp_path)] == sorted([first.id, second.id])
    with pytest.raises(JournalError, match="not a batch ID"):
        Journal.open("../../etc/passwd", tmp_path)
    with pytest.raises(JournalError, match="no batch '20990101-000000-0000'"):
        Journal.open("20990101-000000-0000", tmp_path)


def test_status_explains_what_failed_and_why(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    journal.append("wave", wave=0, event="start")
    journal.send("apply", "rollout", [A], revisions={"models/a": 1})
    result(journal, A, True)
    journal.append("failed", target=list(A), reason="deployment 'a' exceeded its progress deadline")
    journal.send("rollback", "rollback", [A])
    result(journal, A, True, purpose="rollback")
    journal.append("state", state="halted", reason="1 failed (halt after 1)")
    text = "\n".join(describe(journal.replay()))
    assert f"batch {journal.id}: halted - 1 failed (halt after 1)" in text
    assert "wave 1 (1): 1 rolled-back [current]" in text
    assert "wave 2 (3): 3 pending [not started]" in text
    assert "models/a: rolled-back: deployment 'a' exceeded its progress deadline" in text
