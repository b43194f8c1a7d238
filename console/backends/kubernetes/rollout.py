"""Rollout semantics on Deployment objects as the API returns them (plain JSON dicts).

Status follows ``kubectl rollout status`` (observedGeneration first, then updated, old and
available replica counts, ``ProgressDeadlineExceeded`` as failure) and adds what newer kubectl
versions only warn about: the pods of the new ReplicaSet that are stuck, with their reason
(CrashLoopBackOff, ImagePullBackOff, Unschedulable, ...). History lists the Deployment's
ReplicaSets by ``deployment.kubernetes.io/revision``. Rollback follows ``kubectl rollout undo``:
the previous revision or a given one, refused while paused, skipped when the template already
matches (ignoring ``pod-template-hash``), otherwise a JSON patch replacing ``/spec/template`` and
the annotations, with a change-cause saying it was a rollback.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.backends.kubernetes.manifests import CHANGED_AT
from console.model import STUCK_REASONS

Obj = Mapping[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"  # numbers a re-used RS had
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
MODEL_VERSION = "fleetdeck.io/model-version"
MODEL = "fleetdeck.io/model"
# Annotations kubectl never copies from a ReplicaSet onto its Deployment on rollback.
_NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


class Phase(enum.StrEnum):
    COMPLETE = "complete"
    PROGRESSING = "progressing"
    FAILED = "failed"
    PAUSED = "paused"


@dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class RolloutStatus:
    phase: Phase
    message: str
    desired: int
    updated: int
    ready: int
    available: int
    old: int  # replicas of older ReplicaSets still running
    revision: int | None
    problems: tuple[PodProblem, ...] = ()

    @property
    def done(self) -> bool:
        return self.phase in (Phase.COMPLETE, Phase.FAILED)


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _annotations(obj: Obj) -> Mapping[str, str]:
    annotations: Mapping[str, str] = _meta(obj).get("annotations") or {}
    return annotations


def revision_of(obj: Obj) -> int | None:
    value = _annotations(obj).get(REVISION)
    return int(value) if value and value.isdigit() else None


def owned_replicasets(deployment: Obj, replicasets: Iterable[Obj]) -> list[Obj]:
    """The Deployment's ReplicaSets (by owner reference), oldest revision first."""
    uid = _meta(deployment).get("uid")
    owned = [
        rs
        for rs in replicasets
        if any(
            ref.get("uid") == uid and ref.get("kind") == "Deployment"
            for ref in _meta(rs).get("ownerReferences") or ()
        )
    ]
    return sorted(owned, key=lambda rs: revision_of(rs) or 0)


def _condition(deployment: Obj, kind: str) -> Obj | None:
    for condition in (deployment.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            found: Obj = condition
            return found
    return None


def rollout_status(
    deployment: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]
) -> RolloutStatus:
    """Where a Deployment's rollout stands, as ``kubectl rollout status`` sees it, plus the
    reasons its new pods are stuck."""
    name = _meta(deployment).get("name", "?")
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    ready = int(status.get("readyReplicas", 0))
    owned = owned_replicasets(deployment, replicasets)
    newest = owned[-1] if owned else None
    problems = tuple(stuck_pods(newest, pods)) if newest is not None else ()

    def result(phase: Phase, message: str) -> RolloutStatus:
        return RolloutStatus(
            phase,
            message,
            desired,
            updated,
            ready,
            available,
            max(0, total - updated),
            revision_of(deployment),
            problems,
        )

    if spec.get("paused"):
        return result(Phase.PAUSED, f"deployment {name!r} is paused")
    if int(_meta(deployment).get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return result(Phase.PROGRESSING, "waiting for the deployment spec update to be observed")
    progressing = _condition(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        why = f": {problems[0].reason}" if problems else ""
        return result(Phase.FAILED, f"deployment {name!r} exceeded its progress deadline{why}")
    if updated < desired:
        message = f"{updated} of {desired} new replicas updated"
    elif total > updated:
        message = f"{total - updated} old replicas pending termination"
    elif available < updated:
        message = f"{available} of {updated} updated replicas available"
    else:
        return result(Phase.COMPLETE, f"deployment {name!r} successfully rolled out")
    if problems:
        message += f"; {problems[0].pod}: {problems[0].reason}"
    return result(Phase.PROGRESSING, message)


def stuck_pods(replicaset: Obj, pods: Iterable[Obj]) -> list[PodProblem]:
    """Pods of ``replicaset`` that cannot become ready by themselves, and why."""
    template_hash = (_meta(replicaset).get("labels") or {}).get(TEMPLATE_HASH)
    namespace = _meta(replicaset).get("namespace")
    problems = []
    for pod in pods:
        meta = _meta(pod)
        if (
            meta.get("namespace") != namespace
            or (meta.get("labels") or {}).get(TEMPLATE_HASH) != template_hash
        ):
            continue
        problem = pod_problem(pod)
        if problem is not None:
            problems.append(problem)
    return sorted(problems, key=lambda p: p.pod)


def pod_problem(pod: Obj) -> PodProblem | None:
    name = _meta(pod).get("name", "?")
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return PodProblem(name, waiting["reason"], waiting.get("message", ""))
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return PodProblem(name, "Unschedulable", condition.get("message", ""))
    return None


@dataclass(frozen=True)
class Revision:
    number: int
    change_cause: str
    model: str
    model_version: str
    images: tuple[str, ...]
    replicas: int
    template: Obj = field(repr=False)
    created: datetime | None = None  # see console.model.RevisionInfo
    approximate: bool = False
    via_fleetdeck: bool = False


def history(deployment: Obj, replicasets: Iterable[Obj]) -> list[Revision]:
    """The Deployment's revisions, oldest first (``kubectl rollout history``), each dated."""
    owned = [
        (number, rs)
        for rs in owned_replicasets(deployment, replicasets)
        if (number := revision_of(rs)) is not None
    ]
    revisions = []
    for (number, rs), (when, approximate, ours) in zip(
        owned, _dates(deployment, owned), strict=True
    ):
        template = (rs.get("spec") or {}).get("template") or {}
        labels = _meta(template).get("labels") or {}
        containers = (template.get("spec") or {}).get("containers") or ()
        revisions.append(
            Revision(
                number=number,
                change_cause=_annotations(rs).get(CHANGE_CAUSE)
                or _annotations(template).get(CHANGE_CAUSE, ""),
                model=labels.get(MODEL, ""),
                model_version=labels.get(MODEL_VERSION, ""),
                images=tuple(c.get("image", "") for c in containers),
                replicas=int((rs.get("status") or {}).get("replicas", 0)),
                template=template,
                created=when,
                approximate=approximate,
                via_fleetdeck=ours,
            )
        )
    return revisions


STAMP_SKEW = timedelta(minutes=5)  # bastion clocks ahead of the API server's
STAMP_LAG = timedelta(minutes=10)  # the deployment controller behind a stamped change

Dated = tuple[datetime | None, bool, bool]  # when, approximate, made by fleetdeck


def _dates(deployment: Obj, owned: list[tuple[int, Obj]]) -> list[Dated]:
    """When each revision began, and whether fleetdeck made it (``owned``: by revision,
    oldest first).

    Kubernetes keeps no such time. fleetdeck stamps its changes (:data:`CHANGED_AT`), and the
    controller copies the Deployment's annotations onto the new ReplicaSet; a change by another
    client copies the stamp of an earlier change, so a revision is fleetdeck's when its stamp is
    newer than every earlier revision's, not in the future, and (for a new ReplicaSet) not
    much older than the ReplicaSet: a copy made later carries an older stamp. Others date from
    their ReplicaSet's creation, unless the ReplicaSet was re-used (``kubectl rollout undo``):
    then the current one dates from the Deployment's last progress and an older one from the
    revision after it, both approximate.
    """
    dated: list[Dated] = []
    newest_stamp: datetime | None = None
    current = revision_of(deployment)
    latest_believable = datetime.now(UTC) + STAMP_SKEW
    for number, rs in owned:
        annotations = _annotations(rs)
        stamp = _time(annotations.get(CHANGED_AT))
        made = _time(_meta(rs).get("creationTimestamp"))
        reused = bool(annotations.get(REVISION_HISTORY))
        ours = (
            stamp is not None
            and (newest_stamp is None or stamp > newest_stamp)
            and stamp <= latest_believable  # a stamp from the future is nobody's
            # A new ReplicaSet follows its change within the controller's lag; one made
            # long after the stamp it carries was made by someone else (its earlier
            # revision, which had that stamp, renumbered or pruned since).
            and (reused or made is None or made - stamp <= STAMP_LAG)
        )
        if ours:
            newest_stamp = stamp
            dated.append((stamp, False, True))
        elif not reused:
            dated.append((made, False, False))
        elif number == current:
            dated.append((_last_progress(deployment) or made, True, False))
        else:
            dated.append((None, True, False))  # from the next revision, below
    for i in range(len(dated) - 2, -1, -1):
        if dated[i][0] is None:
            dated[i] = (dated[i + 1][0], True, dated[i][2])
    return dated


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _last_progress(deployment: Obj) -> datetime | None:
    for condition in (deployment.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Progressing":
            return _time(condition.get("lastUpdateTime"))
    return None


class RollbackError(Exception):
    """A rollback that must not be done; the message says why and what to do instead."""


@dataclass(frozen=True)
class RollbackPlan:
    deployment: str
    from_revision: int | None
    to_revision: int
    patch: list[dict[str, Any]] | None  # None: nothing to do (template already matches)
    message: str


def _pointer(key: str) -> str:
    """A JSON-pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def without_hash(template: Obj) -> dict[str, Any]:
    copied = copy.deepcopy(dict(template))
    labels = (copied.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(TEMPLATE_HASH, None)
    return copied


def plan_rollback(
    deployment: Obj, replicasets: Iterable[Obj], to_revision: int = 0, *, cause: str = ""
) -> RollbackPlan:
    """What ``kubectl rollout undo [--to-revision]`` would do, as a JSON patch.

    ``to_revision`` 0 means the revision before the current one. ``cause`` becomes the
    change-cause of the rollback (otherwise the old revision's is carried over, as kubectl does).
    """
    name = _meta(deployment).get("name", "?")
    if (deployment.get("spec") or {}).get("paused"):
        raise RollbackError(
            f"deployment {name!r} is paused; resume it before rolling back (fleetdeck resume)"
        )
    revisions = {revision_of(rs): rs for rs in owned_replicasets(deployment, replicasets)}
    revisions.pop(None, None)
    current = revision_of(deployment)
    if to_revision == 0:
        # kubectl's choice: the second-highest revision among the ReplicaSets, whatever the
        # Deployment's own annotation says (it lags right after a rollout).
        newest_first = sorted((n for n in revisions if n is not None), reverse=True)
        if len(newest_first) < 2:
            raise RollbackError(f"deployment {name!r} has no earlier revision to roll back to")
        to_revision = newest_first[1]
    target = revisions.get(to_revision)
    if target is None:
        known = ", ".join(str(n) for n in sorted(n for n in revisions if n is not None))
        raise RollbackError(
            f"deployment {name!r} has no revision {to_revision} (revisions: {known or 'none'})"
        )
    template = without_hash((target.get("spec") or {}).get("template") or {})
    if template == without_hash((deployment.get("spec") or {}).get("template") or {}):
        return RollbackPlan(
            name,
            current,
            to_revision,
            None,
            f"skipped: deployment {name!r} already matches revision {to_revision}",
        )
    annotations = {k: v for k, v in _annotations(deployment).items() if k in _NOT_COPIED}
    annotations.update({k: v for k, v in _annotations(target).items() if k not in _NOT_COPIED})
    if cause:
        annotations[CHANGE_CAUSE] = cause
    patch: list[dict[str, Any]] = [
        # Fails if someone changed the template since it was read: never undo a change this
        # plan did not see (status updates, which come all the time, do not matter).
        {
            "op": "test",
            "path": "/spec/template",
            "value": (deployment.get("spec") or {}).get("template"),
        },
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    version = (_meta(template).get("labels") or {}).get(MODEL_VERSION)
    if version is not None and _meta(deployment).get("labels"):
        # The Deployment's own label says which version runs: it follows the template back.
        patch.append(
            {"op": "add", "path": "/metadata/labels/" + _pointer(MODEL_VERSION), "value": version}
        )
    return RollbackPlan(
        name,
        current,
        to_revision,
        patch,
        f"rolled back deployment {name!r} to revision {to_revision}",
    )
