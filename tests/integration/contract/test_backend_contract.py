"""What every backend promises, through the one interface: deploy, rollout, history, rollback,
scale, restart, pause, resume, delete, their dry runs (which change nothing) and refusals."""

from __future__ import annotations

from console.model import DeploymentState, DeployRequest
from tests.infra.k8s_fixtures import poll_until
from tests.integration.contract.conftest import Fleet


def deploy(fleet: Fleet, name: str = "digits", version: int = 1) -> None:
    result = fleet.backend.deploy(DeployRequest(name, "digits", version, fleet.namespace, 1))
    assert result.ok, result.message
    fleet.wait(name)


def test_deploy_checks_the_store_and_a_dry_run_creates_nothing(fleet: Fleet) -> None:
    backend = fleet.backend
    missing = backend.deploy(DeployRequest("digits", "digits", 9, fleet.namespace))
    assert not missing.ok
    assert "version 9 of model 'digits' not found" in missing.message
    dry = backend.deploy(DeployRequest("digits", "digits", 1, fleet.namespace), dry_run=True)
    assert dry.ok
    assert dry.dry_run
    assert dry.changes
    fleet.settle()
    assert backend.deployments() == []
    deploy(fleet)
    (row,) = backend.deployments()
    assert (row.name, row.model, row.version, row.desired, row.ready) == (
        "digits",
        "digits",
        "1",
        1,
        1,
    )
    again = backend.deploy(DeployRequest("digits", "digits", 1, fleet.namespace))
    assert not again.ok
    assert "already exists" in again.message


def test_rollout_then_rollback_moves_versions_and_keeps_history(fleet: Fleet) -> None:
    backend, ns = fleet.backend, fleet.namespace
    deploy(fleet)
    dry = backend.rollout(ns, "digits", 2, dry_run=True)
    assert dry.ok
    assert dry.message.startswith("would roll")
    fleet.settle()
    assert backend.deployment(ns, "digits").version == "1"
    assert not backend.rollout(ns, "digits", 7).ok  # not in the store

    assert backend.rollout(ns, "digits", 2).ok
    poll_until("version 2", lambda: backend.deployment(ns, "digits").version == "2")
    fleet.wait("digits")
    assert [(r.number, r.model_version) for r in backend.history(ns, "digits")] == [
        (1, "1"),
        (2, "2"),
    ]

    assert backend.rollback(ns, "digits").ok
    poll_until("back on version 1", lambda: backend.deployment(ns, "digits").version == "1")
    fleet.wait("digits")
    history = backend.history(ns, "digits")
    assert [(r.number, r.model_version) for r in history] == [(2, "2"), (3, "1")]
    assert history[-1].change_cause == "rollback to revision 1 by alice via fleetdeck"
    assert backend.rollback(ns, "digits", to_revision=3).message.startswith("skipped")
    assert not backend.rollback(ns, "digits", to_revision=9).ok


def test_scale_pause_resume_restart_and_their_refusals(fleet: Fleet) -> None:
    backend, ns = fleet.backend, fleet.namespace
    deploy(fleet)
    for dry in (
        backend.scale(ns, "digits", 3, dry_run=True),
        backend.pause(ns, "digits", dry_run=True),
        backend.restart(ns, "digits", dry_run=True),
    ):
        assert dry.ok
        assert dry.changes
        assert dry.message.startswith("would")
    fleet.settle()
    assert backend.deployment(ns, "digits").desired == 1

    assert backend.scale(ns, "digits", 2).ok
    poll_until("2 ready", lambda: backend.deployment(ns, "digits").ready == 2)
    assert backend.pause(ns, "digits").ok
    fleet.wait("digits", DeploymentState.PAUSED)
    assert "paused" in backend.rollback(ns, "digits").message
    assert not backend.restart(ns, "digits").ok  # a paused rollout would not restart
    assert backend.resume(ns, "digits").ok
    assert backend.restart(ns, "digits").ok
    poll_until("a new revision", lambda: backend.deployment(ns, "digits").revision == 2)
    fleet.wait("digits")


def test_delete_removes_the_deployment_and_a_second_delete_says_not_found(fleet: Fleet) -> None:
    backend, ns = fleet.backend, fleet.namespace
    deploy(fleet)
    assert backend.delete(ns, "digits", dry_run=True).ok
    fleet.settle()
    assert backend.deployment(ns, "digits") is not None
    assert backend.delete(ns, "digits").ok
    fleet.wait_gone("digits")
    gone = backend.delete(ns, "digits")
    assert not gone.ok
    assert "not found" in gone.message


def test_pods_and_events_of_a_deployment_are_readable(fleet: Fleet) -> None:
    backend, ns = fleet.backend, fleet.namespace
    deploy(fleet)
    (pod,) = backend.pods(ns, "digits")
    assert pod.ready
    assert pod.phase == "Running"
    assert pod.reason == ""
    poll_until(
        "scaling events",
        lambda: any(e.reason == "ScalingReplicaSet" for e in backend.events(ns, "digits")),
    )
