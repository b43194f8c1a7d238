"""The agent's desired state: what survives a restart, and how revisions are numbered."""

from __future__ import annotations

from pathlib import Path

from console.local.state import JobRow, State, now


def test_a_deployment_and_its_revisions_survive_reopening_the_database(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.create_deployment("default", "digits", "digits", 1, 2, "deploy digits v1 by a")
    state.new_revision("default", "digits", "digits", 2, "rollout digits v2 by a")
    state.update_deployment("default", "digits", serving_revision=2)
    state.close()

    again = State(tmp_path / "state.db")
    (row,) = again.deployments()
    assert (row.name, row.replicas, row.revision, row.serving_revision) == ("digits", 2, 2, 2)
    assert [(r.number, r.version) for r in again.revisions("default", "digits")] == [(1, 1), (2, 2)]


def test_a_rollback_moves_the_old_revision_to_a_new_number_as_kubectl_undo_does(
    tmp_path: Path,
) -> None:
    state = State(tmp_path / "state.db")
    state.create_deployment("default", "digits", "digits", 1, 1, "deploy")
    state.new_revision("default", "digits", "digits", 2, "rollout")
    number = state.new_revision("default", "digits", "digits", 1, "rollback to 1", moved=1)
    assert number == 3
    assert [(r.number, r.version) for r in state.revisions("default", "digits")] == [(2, 2), (3, 1)]
    assert state.deployment("default", "digits").revision == 3  # type: ignore[union-attr]


def test_deleting_a_deployment_forgets_its_history_so_a_new_one_starts_at_revision_1(
    tmp_path: Path,
) -> None:
    state = State(tmp_path / "state.db")
    state.create_deployment("default", "digits", "digits", 1, 1, "deploy")
    state.new_revision("default", "digits", "digits", 2, "rollout")
    state.delete_deployment("default", "digits")
    state.create_deployment("default", "digits", "digits", 2, 1, "deploy again")
    assert [r.number for r in state.revisions("default", "digits")] == [1]


def test_a_job_keeps_its_flags_and_phase(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    job = JobRow(
        "default",
        "train-a",
        "digits",
        "/data",
        ("--epochs=3",),
        0,
        None,
        None,
        "Pending",
        "",
        now(),
        None,
        None,
    )
    state.add_jobs([job])
    state.set_job_phase("default", "train-a", "Running", started=now())
    state.set_job_phase("default", "train-a", "Failed", "Cancelled", finished=now())
    (found,) = state.jobs()
    assert (found.args, found.phase, found.reason) == (("--epochs=3",), "Failed", "Cancelled")
    assert found.started is not None
    assert found.finished is not None
