"""Every mutation through one path: refused before anything is sent, one audit line per
target, the parameters as values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from console.audit import AuditContext, read_audit
from console.backends.base import Backend
from console.core import actions
from console.core.guard import Guard, Refusal
from console.model import AutoscaleRequest, DeployRequest, TrainingRequest
from tests.unit.console.core.fake_backend import RecordingBackend, as_backend


@dataclass
class Actor:
    backend: Backend
    guard: Guard
    audit: AuditContext


def actor_on(fake: RecordingBackend, tmp_path: Path, *, read_only: bool = False) -> Actor:
    backend = as_backend(fake)
    return Actor(
        backend,
        Guard(backend, read_only, "prod", "alice"),
        AuditContext("prod", "ctx", "alice", tmp_path / "audit.jsonl"),
    )


def test_a_read_only_profile_refuses_before_anything_is_sent_or_audited(tmp_path: Path) -> None:
    fake = RecordingBackend()
    actor = actor_on(fake, tmp_path, read_only=True)
    with pytest.raises(Refusal, match="read-only: profile 'prod'"):
        actions.perform(actor, actions.Deploy(DeployRequest("digits", "digits", 1)))
    assert fake.sent == []
    assert read_audit(path=tmp_path / "audit.jsonl") == []


def test_rbac_refuses_in_the_namespace_of_the_targets(tmp_path: Path) -> None:
    fake = RecordingBackend(forbidden=frozenset({("patch", "other")}))
    actor = actor_on(fake, tmp_path)
    request = actions.OnTargets(actions.ActionSpec("restart"), (("models", "a"), ("other", "b")))
    with pytest.raises(Refusal, match="may not patch deployments in namespace other"):
        actions.perform(actor, request)
    assert fake.sent == []


def test_a_sweep_is_audited_one_line_per_job_with_the_grid_as_lists(tmp_path: Path) -> None:
    fake = RecordingBackend()
    grid = {"width": ("16", "32"), "learning_rate": ("0.01",)}
    request = TrainingRequest("digits", "data", None, 1, 3, {"depth": "2"}, grid)
    outcome = actions.perform(actor_on(fake, tmp_path), actions.Train(request))
    entries = read_audit(path=tmp_path / "audit.jsonl")
    assert [e.targets for e in entries] == [(r.target,) for r in outcome.results]
    assert [r.target for r in outcome.results] == ["models/train-digits-0", "models/train-digits-1"]
    assert {e.user for e in entries} == {"alice"}
    assert entries[0].parameters == {
        "model": "digits",
        "data": "data",
        "gpus": 1,
        "epochs": 3,
        "params": {"depth": "2"},
        "grid": {"width": ["16", "32"], "learning_rate": ["0.01"]},
    }


def test_cancelling_several_jobs_writes_a_line_for_each(tmp_path: Path) -> None:
    fake = RecordingBackend()
    outcome = actions.perform(actor_on(fake, tmp_path), actions.Cancel("models", ("a", "b")))
    assert outcome.ok
    assert fake.sent == ["cancel a", "cancel b"]
    entries = read_audit(path=tmp_path / "audit.jsonl")
    assert [(e.action, e.targets) for e in entries] == [
        ("cancel", ("models/a",)),
        ("cancel", ("models/b",)),
    ]


def test_a_batch_id_goes_into_every_line_of_the_batch(tmp_path: Path) -> None:
    fake = RecordingBackend()
    actor = actor_on(fake, tmp_path)
    actor.audit = AuditContext("prod", None, "alice", tmp_path / "audit.jsonl", {"batch": "b1"})
    targets = (("models", "a"), ("models", "b"))
    actions.perform(actor, actions.OnTargets(actions.ActionSpec("restart"), targets))
    entries = read_audit(path=tmp_path / "audit.jsonl")
    assert sorted(e.targets for e in entries) == [("models/a",), ("models/b",)]
    assert {e.parameters["batch"] for e in entries} == {"b1"}


def test_autoscale_on_a_backend_without_autoscalers_says_which_profile_it_needs(
    tmp_path: Path,
) -> None:
    fake = RecordingBackend()
    request = actions.Autoscale("models", AutoscaleRequest("digits", 1, 3, cpu_percent=70))
    with pytest.raises(actions.Unsupported, match="needs a Kubernetes profile"):
        actions.perform(actor_on(fake, tmp_path), request)
    assert read_audit(path=tmp_path / "audit.jsonl") == []


def test_an_audit_log_that_cannot_be_written_is_reported_and_the_result_kept(
    tmp_path: Path,
) -> None:
    fake = RecordingBackend()
    actor = actor_on(fake, tmp_path)
    (tmp_path / "blocked").write_text("a file where the log's folder should be")
    actor.audit = AuditContext("prod", None, "alice", tmp_path / "blocked" / "audit.jsonl")
    outcome = actions.perform(actor, actions.Deploy(DeployRequest("digits", "digits", 1)))
    assert outcome.ok
    assert outcome.audit_error.startswith("could not write the audit log")


def test_a_request_without_a_namespace_is_checked_in_the_default_one() -> None:
    fake = RecordingBackend()
    request = actions.Deploy(DeployRequest("digits", "digits", 1))
    assert actions.namespaces_of(as_backend(fake), request) == ["models"]
