"""Kubernetes objects (the API's JSON) into the console's backend-neutral types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from console.backends.kubernetes.manifests import (
    KIND_LABEL,
    MODEL_LABEL,
    SWEEP_LABEL,
    VERSION_LABEL,
)
from console.backends.kubernetes.rollout import (
    Phase,
    history,
    pod_problem,
    revision_of,
    rollout_status,
)
from console.model import (
    DeploymentState,
    EventInfo,
    JobPhase,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
    TrainingJob,
)

Obj = Mapping[str, Any]
GPU = "nvidia.com/gpu"


def timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def deployment(obj: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]) -> ModelDeployment:
    meta, spec = _meta(obj), obj.get("spec") or {}
    template = spec.get("template") or {}
    # The running template says which model version serves; the Deployment's labels fill in.
    labels = (meta.get("labels") or {}) | (_meta(template).get("labels") or {})
    status = rollout_status(obj, replicasets, pods)
    state, reason = _state(status, obj)
    containers = (template.get("spec") or {}).get("containers") or ()
    return ModelDeployment(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        model=labels.get(MODEL_LABEL, ""),
        version=labels.get(VERSION_LABEL, ""),
        desired=status.desired,
        ready=status.ready,
        updated=status.updated,
        available=status.available,
        state=state,
        reason=reason,
        revision=revision_of(obj),
        created=timestamp(meta.get("creationTimestamp")),
        image=containers[0].get("image", "") if containers else "",
        labels=dict(meta.get("labels") or {}),
    )


def _state(status: Any, obj: Obj) -> tuple[DeploymentState, str]:
    if status.phase is Phase.PAUSED:
        return DeploymentState.PAUSED, ""
    if status.phase is Phase.FAILED:
        return DeploymentState.FAILED, status.message
    if status.phase is Phase.PROGRESSING:
        if _settled(obj) and status.updated >= status.desired:
            # The rollout finished earlier and pods were lost since: serving, short-handed.
            return DeploymentState.DEGRADED, status.message
        return DeploymentState.PROGRESSING, status.message
    if status.available < status.desired:
        return DeploymentState.DEGRADED, f"{status.available} of {status.desired} available"
    return DeploymentState.AVAILABLE, ""


def _settled(obj: Obj) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Progressing":
            return bool(condition.get("reason") == "NewReplicaSetAvailable")
    return False


def revisions(obj: Obj, replicasets: Iterable[Obj]) -> list[RevisionInfo]:
    return [
        RevisionInfo(
            r.number,
            r.change_cause,
            r.model,
            r.model_version,
            r.images,
            r.replicas,
            created=r.created,
            approximate=r.approximate,
            via_fleetdeck=r.via_fleetdeck,
        )
        for r in history(obj, replicasets)
    ]


def pod(obj: Obj) -> PodInfo:
    meta, status = _meta(obj), obj.get("status") or {}
    containers = status.get("containerStatuses") or ()
    problem = pod_problem(obj)
    ready = bool(containers) and all(c.get("ready") for c in containers)
    return PodInfo(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=status.get("phase", "Unknown"),
        ready=ready,
        restarts=sum(int(c.get("restartCount", 0)) for c in containers),
        node=(obj.get("spec") or {}).get("nodeName", ""),
        reason=problem.reason if problem else "",
        created=timestamp(meta.get("creationTimestamp")),
    )


def selected_by(deployment_obj: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The pods a Deployment's selector picks in its namespace (matchLabels only)."""
    namespace = _meta(deployment_obj).get("namespace")
    match = ((deployment_obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return [
        p
        for p in pods
        if _meta(p).get("namespace") == namespace
        and all((_meta(p).get("labels") or {}).get(k) == v for k, v in match.items())
    ]


def event(obj: Obj) -> EventInfo:
    involved = obj.get("involvedObject") or {}
    when = obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")
    return EventInfo(
        time=timestamp(when),
        kind=obj.get("type", "Normal"),
        reason=obj.get("reason", ""),
        object=f"{involved.get('kind', '?')}/{involved.get('name', '?')}",
        message=obj.get("message", ""),
        count=int(obj.get("count") or 1),
    )


def gpus_of(allocatable: Mapping[str, str] | None) -> int:
    """A node's allocatable GPUs (0 when it has none, or a value that is no whole number)."""
    try:
        return max(0, int((allocatable or {}).get(GPU, 0)))
    except (TypeError, ValueError):
        return 0


def job(obj: Obj, pods: Iterable[Obj]) -> TrainingJob:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or ()
    gpus = sum(
        int(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0)) for c in containers
    )
    uid = meta.get("uid")
    owned = [
        p for p in pods if any(r.get("uid") == uid for r in _meta(p).get("ownerReferences") or ())
    ]
    newest = max(owned, key=lambda p: _meta(p).get("creationTimestamp", ""), default=None)
    node = ((newest or {}).get("spec") or {}).get("nodeName", "")
    pending_reason = ""
    if newest is not None and not node:
        problem = pod_problem(newest)
        pending_reason = f"{problem.reason}: {problem.message}" if problem else "Pending"
    return TrainingJob(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        model=labels.get(MODEL_LABEL, ""),
        phase=_job_phase(status, node),
        gpus=gpus,
        node=node,
        pending_reason=pending_reason,
        started=timestamp(status.get("startTime")),
        finished=timestamp(status.get("completionTime")),
        sweep=labels.get(SWEEP_LABEL),
        trial=_trial(containers),
        kind=labels.get(KIND_LABEL, "train"),
    )


def _job_phase(status: Obj, node: str) -> JobPhase:
    for condition in status.get("conditions") or ():
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return JobPhase.SUCCEEDED if condition["type"] == "Complete" else JobPhase.FAILED
    if status.get("succeeded"):
        return JobPhase.SUCCEEDED
    return JobPhase.RUNNING if status.get("active") and node else JobPhase.PENDING


def _trial(containers: Iterable[Obj]) -> int | None:
    for container in containers:
        for item in container.get("env") or ():
            if item.get("name") == "FLEETDECK_TRIAL" and str(item.get("value", "")).isdigit():
                return int(item["value"])
    return None
