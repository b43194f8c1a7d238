"""Every backend reports a deployment's conditions as a Kubernetes Deployment's: Available and
Progressing with the deployment controller's reasons, Progressing Unknown while paused, and
nothing for a deployment that does not exist."""

from __future__ import annotations

from collections.abc import Mapping

from console.backends.base import ConditionInfo
from console.model import DeployRequest
from tests.infra.k8s_fixtures import poll_until
from tests.integration.contract.conftest import Fleet


def conditions(fleet: Fleet, name: str) -> Mapping[str, ConditionInfo]:
    return {c.type: c for c in fleet.backend.conditions(fleet.namespace, name)}


def reasons(fleet: Fleet, name: str) -> dict[str, tuple[str, str]]:
    return {t: (c.status, c.reason) for t, c in conditions(fleet, name).items()}


def test_an_available_deployment_is_available_and_progressed_and_paused_is_unknown(
    fleet: Fleet,
) -> None:
    backend, ns = fleet.backend, fleet.namespace
    result = backend.deploy(DeployRequest("digits", "digits", 1, ns, 1))
    assert result.ok, result.message
    fleet.wait("digits")
    done = {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    poll_until("Available and progressed", lambda: reasons(fleet, "digits") == done)
    shown = conditions(fleet, "digits")
    assert shown["Available"].message == "Deployment has minimum availability."
    assert "successfully progressed" in shown["Progressing"].message

    assert backend.pause(ns, "digits").ok
    poll_until(
        "Progressing Unknown while paused",
        lambda: reasons(fleet, "digits").get("Progressing") == ("Unknown", "DeploymentPaused"),
    )
    assert reasons(fleet, "digits")["Available"] == ("True", "MinimumReplicasAvailable")

    assert backend.conditions(ns, "nothing-here") == []
