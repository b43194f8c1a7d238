"""The one interface the console talks to a fleet through.

Implemented by the Kubernetes backend (the official client, a watch-fed cache) and the local
runtime (real processes supervised by a small agent). Reads come from a cache that the backend
keeps current; mutations go to the cluster or the agent and return an ``ActionResult`` per
target. Every mutation takes ``dry_run``: the server checks it and says what would change,
nothing is stored.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from console.model import (
    ActionResult,
    AutoscaleRequest,
    AutoscalerInfo,
    DeployRequest,
    EventInfo,
    GpuCapacity,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
    ScoringRequest,
    TrainingJob,
    TrainingRequest,
)


class BackendError(Exception):
    """What a backend could not do (a read that failed, a template that does not fill, an
    answer that makes no sense); the message says why. Each backend's errors derive from it,
    so a front-end catches this one."""


def error_line(exc: BaseException) -> str:
    """One line for any error a backend let through: a server's answer (an exception with a
    ``status``, such as the Kubernetes client's) as its status, reason and the message of its
    JSON body; anything else as its first line."""
    status = getattr(exc, "status", None)
    if status is None:
        return (str(exc).splitlines() or [""])[0]
    reason = getattr(exc, "reason", "") or ""
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
        message = (body.get("message") if isinstance(body, dict) else None) or reason
    except (ValueError, TypeError):
        message = reason or str(exc)
    return f"{status} {reason}: {message}".replace("  ", " ")


@dataclass(frozen=True)
class Connection:
    """Whether the backend's view is live; the UI shows "reconnecting since 12:03:04"."""

    live: bool
    since: datetime
    detail: str = ""


@dataclass(frozen=True)
class ConditionInfo:
    """One status condition of a deployment, as a Kubernetes Deployment's
    ``status.conditions`` (Available, Progressing, ReplicaFailure)."""

    type: str
    status: str  # True | False | Unknown
    reason: str
    message: str
    updated: str = ""  # when it last changed, as the backend gives it; "" when not known


@dataclass(frozen=True)
class LogRequest:
    pods: Sequence[str]  # several pods are merged, each line prefixed with its pod
    namespace: str
    follow: bool = False
    since: timedelta | None = None
    tail: int | None = None
    timestamps: bool = False
    previous: bool = False
    container: str | None = None
    stop: threading.Event | None = None  # set it to end a followed stream
    all_containers: bool = False  # every container of each pod, each prefixed [pod/container]


@dataclass(frozen=True)
class RouteInfo:
    """How clients reach a deployment: its Ingress or HTTPRoute (Kubernetes), or the local
    gateway's path."""

    kind: str  # Ingress | HTTPRoute | gateway
    name: str
    hosts: tuple[str, ...]  # () when any host matches
    paths: tuple[str, ...]


class Backend(Protocol):
    """What every backend does; what only some do is a capability below."""

    @property
    def name(self) -> str:
        """``kubernetes`` or ``local``."""
        ...

    namespaces: tuple[str, ...]  # the namespaces read; (): all of them
    default_namespace: str  # where a NAME is looked for or created when none is given

    # -- reading (from the backend's cache) ---------------------------------------------------
    def connection(self) -> Connection: ...
    def deployments(self, selector: str | None = None) -> list[ModelDeployment]: ...
    def deployment(self, namespace: str, name: str) -> ModelDeployment | None: ...
    def history(self, namespace: str, name: str) -> list[RevisionInfo]: ...
    def histories(self) -> dict[tuple[str, str], list[RevisionInfo]]:
        """Every deployment's revisions by (namespace, name), read in one pass (the Changes
        timeline over thousands of deployments)."""
        ...

    def warnings(self) -> list[tuple[tuple[str, str], EventInfo]]:
        """Warning events of every deployment (its own, its ReplicaSets', its pods'), each
        with the (namespace, name) of its deployment."""
        ...

    def pods(self, namespace: str, name: str) -> list[PodInfo]: ...
    def events(self, namespace: str, name: str) -> list[EventInfo]: ...
    def conditions(self, namespace: str, name: str) -> list[ConditionInfo]: ...
    def route(self, namespace: str, name: str) -> RouteInfo | None:
        """The deployment's route, None when it has none (blocking: a read of the cluster)."""
        ...

    def jobs(self) -> list[TrainingJob]: ...
    def job_pods(self, namespace: str, name: str) -> list[str]: ...
    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_change`` (coalesced) when anything above changes; returns unsubscribe."""
        ...

    # -- mutations ----------------------------------------------------------------------------
    # ``verify``: check the version is in the profile's store before anything is sent.
    def deploy(
        self, request: DeployRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult: ...
    def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult: ...
    def rollback(
        self, namespace: str, name: str, to_revision: int = 0, *, dry_run: bool = False
    ) -> ActionResult: ...
    def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool = False
    ) -> ActionResult: ...
    def restart(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult: ...
    def pause(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult: ...
    def resume(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult: ...
    def delete(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult: ...
    def train(self, request: TrainingRequest, *, dry_run: bool = False) -> list[ActionResult]: ...
    def cancel_job(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult: ...
    def score(
        self, request: ScoringRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult: ...

    # -- streams and permissions --------------------------------------------------------------
    def logs(self, request: LogRequest) -> Iterator[str]: ...
    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """Whether the user may do this (cached with expiry); False hides the action."""
        ...

    def close(self) -> None: ...


# -- capabilities: what only some backends do; front-ends ask with isinstance ------------------
@runtime_checkable
class Autoscaling(Protocol):
    """Autoscales a deployment (Kubernetes: through the profile's ``[autoscaling]`` engine, a
    HorizontalPodAutoscaler or a KEDA ScaledObject of the same name; the local runtime: its
    agent)."""

    def autoscale(
        self, namespace: str, request: AutoscaleRequest, *, dry_run: bool = False
    ) -> ActionResult:
        """Create the deployment's autoscaler, or update the one fleetdeck made before."""
        ...

    def autoscaler(self, namespace: str, name: str) -> AutoscalerInfo | None:
        """The deployment's autoscaler, or None when it has none (blocking: from a worker)."""
        ...


@runtime_checkable
class KnowsGpus(Protocol):
    """Knows the cluster's GPU capacity (Kubernetes: its nodes' allocatable GPUs)."""

    def gpu_capacity(self) -> GpuCapacity:
        """Blocking (asks the API server): call from a worker. Raises ``BackendError``."""
        ...


@runtime_checkable
class ReviewsUser(Protocol):
    """Knows who the server says the user is (Kubernetes: a SelfSubjectReview), which may
    differ from the local name of the credentials (a kubeconfig entry)."""

    def reviewed_user(self) -> str | None:
        """The server's name for the user; None when the server cannot say."""
        ...

    def act_as(self, user: str) -> None:
        """Name ``user`` in what the backend writes from now on (change-causes)."""
        ...
