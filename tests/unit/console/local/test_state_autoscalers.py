"""The agent's autoscalers in its state: kept across a reopen, their newest decisions kept,
deleted with their deployment, and a row no agent wrote read without being trusted."""

from __future__ import annotations

from pathlib import Path

from console.local.state import DECISIONS_KEPT, State
from console.model import ScalingDecision


def test_an_autoscaler_and_its_decisions_survive_a_reopen_and_go_with_the_deployment(
    tmp_path: Path,
) -> None:
    state = State(tmp_path / "state.db")
    state.create_deployment("default", "digits", "digits", 1, 1, "deploy")
    state.put_autoscaler("default", "digits", 1, 3, 12.5, None)
    state.put_autoscaler("default", "digits", 2, 4, 10.0, 30)  # an update keeps one row
    for n in range(DECISIONS_KEPT + 5):
        state.scale_by_autoscaler(
            "default", "digits", 2 + n % 2, ScalingDecision(float(n), 2, 3, f"decision {n}")
        )
    state.close()

    again = State(tmp_path / "state.db")
    (scaler,) = again.autoscalers()
    assert (scaler.min_replicas, scaler.max_replicas, scaler.rps_per_pod) == (2, 4, 10.0)
    assert (scaler.scale_down_seconds, scaler.problem) == (30, "")
    decisions = again.decisions("default", "digits")
    assert len(decisions) == DECISIONS_KEPT
    assert decisions[0].reason == f"decision {DECISIONS_KEPT + 4}"  # newest first
    assert again.deployment("default", "digits").replicas == 2 + (DECISIONS_KEPT + 4) % 2  # type: ignore[union-attr]

    again.delete_deployment("default", "digits")
    assert again.autoscaler("default", "digits") is None
    assert again.decisions("default", "digits") == []


def test_a_row_no_agent_wrote_comes_back_with_its_problem(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.db.execute(
        "INSERT INTO autoscalers VALUES ('default', 'Bad/Name', 5, 2, -1.0, NULL, 'x', 'y')"
    )
    state.db.execute(
        "INSERT INTO scaling_decisions VALUES ('default', 'Bad/Name', 1.0, 1, 2, 'a\x1b[2Jb')"
    )
    (scaler,) = state.autoscalers()
    assert "invalid name 'Bad/Name'" in scaler.problem
    assert "rps_per_pod -1.0 is not a number above 0" in scaler.problem
    assert "max_replicas 2 is below min_replicas 5" in scaler.problem
    assert state.decisions("default", "Bad/Name") == []  # an escape sequence is never shown
