"""One action over many deployments with bounded parallelism, per-target progress and audit.

The TUI and the CLI call :func:`run_batch`. Progress callbacks come from worker threads, one at a
time (a lock orders them), and each target's events arrive in order: ``pending`` for all, then
``running``, then ``ok`` or ``failed`` (or ``skipped`` when ``stop`` was set before it was sent).
A TUI hands them to its UI thread (``App.call_from_thread``); nothing here knows about Textual.
Every result that was sent is appended to the audit log as it comes back, so a console killed
mid-batch still leaves a record of what it did.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from console import audit
from console.audit import AuditContext as AuditContext  # where the batch engine named it first
from console.backends.base import Backend
from console.model import ActionResult, DeploymentState, ModelDeployment

Action = Literal["rollout", "rollback", "restart", "scale", "pause", "resume", "delete"]
ACTIONS: tuple[Action, ...] = (
    "rollout",
    "rollback",
    "restart",
    "scale",
    "pause",
    "resume",
    "delete",
)
Target = tuple[str, str]  # (namespace, name)


def target_name(target: Target) -> str:
    """``namespace/name``, as results and the audit log name a target."""
    return f"{target[0]}/{target[1]}"


@dataclass(frozen=True)
class ActionSpec:
    """What to do to each target: the action and the one parameter it needs."""

    action: Action
    version: int | None = None  # rollout
    replicas: int | None = None  # scale
    to_revision: int = 0  # rollback; 0 = the previous revision
    verify: bool = True  # rollout: check the version is in the store first (Kubernetes backend)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            known = ", ".join(ACTIONS)
            raise ValueError(f"unknown action {self.action!r}; expected one of {known}")
        if self.action == "rollout" and self.version is None:
            raise ValueError("a rollout needs a version (the model version to roll out to)")
        if self.action == "scale" and (self.replicas is None or self.replicas < 0):
            raise ValueError("scale needs replicas >= 0")
        if self.to_revision < 0:
            raise ValueError("to_revision must be >= 0 (0 means the previous revision)")

    def parameters(self) -> dict[str, object]:
        """The action's parameters, as the audit log and the journal keep them."""
        if self.action == "rollout":
            return {"version": self.version, "verify": self.verify}
        if self.action == "scale":
            return {"replicas": self.replicas}
        if self.action == "rollback":
            return {"to_revision": self.to_revision}
        return {}

    def describe(self) -> str:
        if self.action == "rollout":
            return f"rollout to version {self.version}"
        if self.action == "scale":
            return f"scale to {self.replicas}"
        if self.action == "rollback":
            return f"rollback to revision {self.to_revision or 'previous'}"
        return self.action

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, **self.parameters()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionSpec:
        return cls(
            action=data["action"],
            version=data.get("version"),
            replicas=data.get("replicas"),
            to_revision=int(data.get("to_revision") or 0),
            verify=bool(data.get("verify", True)),
        )


class TargetState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # never sent: the batch was stopped first


@dataclass(frozen=True)
class Progress:
    """One target's state change, as the TUI's Batch screen and the CLI's progress show it."""

    target: str  # namespace/name
    state: TargetState
    message: str = ""
    result: ActionResult | None = None


ProgressCallback = Callable[[Progress], None]


def call_action(backend: Backend, spec: ActionSpec, target: Target, dry_run: bool) -> ActionResult:
    """Send ``spec`` to one target through the backend; any exception becomes a failed result
    with a one-line reason (a batch never dies of one target)."""
    namespace, name = target
    try:
        if spec.action == "rollout":
            assert spec.version is not None
            result = backend.rollout(
                namespace, name, spec.version, dry_run=dry_run, verify=spec.verify
            )
        elif spec.action == "rollback":
            result = backend.rollback(namespace, name, spec.to_revision, dry_run=dry_run)
        elif spec.action == "scale":
            assert spec.replicas is not None
            result = backend.scale(namespace, name, spec.replicas, dry_run=dry_run)
        elif spec.action == "restart":
            result = backend.restart(namespace, name, dry_run=dry_run)
        elif spec.action == "pause":
            result = backend.pause(namespace, name, dry_run=dry_run)
        elif spec.action == "resume":
            result = backend.resume(namespace, name, dry_run=dry_run)
        else:
            result = backend.delete(namespace, name, dry_run=dry_run)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        return ActionResult(target_name(target), False, f"{type(exc).__name__}: {first}", dry_run)
    return result


def rows_of(backend: Backend, targets: Sequence[Target]) -> dict[Target, ModelDeployment]:
    """The targets as the backend's cache has them now: one indexed read for many targets,
    one lookup each for a few."""
    if len(targets) > FEW_TARGETS:
        return {r.key: r for r in backend.deployments()}
    rows = (backend.deployment(*t) for t in targets)
    return {r.key: r for r in rows if r is not None}


FEW_TARGETS = 20


def state_before(
    rows: Mapping[Target, ModelDeployment], target: Target
) -> dict[str, object] | None:
    """What the audit line keeps of a target as it was before the change: the revision, the
    replicas and whether it was paused, so the change can be undone exactly; None when the
    target is not known."""
    row = rows.get(target)
    if row is None:
        return None
    return {
        "revision": row.revision,
        "replicas": row.desired,
        "paused": row.state is DeploymentState.PAUSED,
        "version": row.version,
    }


def audit_result(
    context: AuditContext,
    action: str,
    result: ActionResult,
    parameters: Mapping[str, object],
) -> None:
    """One audit line for one target's result: the batch engine's one way to audit."""
    context.write(
        action,
        [result.target],
        [audit.TargetResult(result.target, result.ok, result.message)],
        parameters,
        dry_run=result.dry_run,
    )


def run_batch(
    backend: Backend,
    spec: ActionSpec,
    targets: Sequence[Target],
    *,
    max_parallel: int = 10,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    audit_context: AuditContext | None = None,
    specs: Mapping[Target, ActionSpec] | None = None,
) -> list[ActionResult]:
    """Send ``spec`` to every target, at most ``max_parallel`` at a time; one result per target,
    in the order of ``targets``.

    Setting ``stop`` lets the requests in flight finish and sends no more; the targets never
    sent come back failed with "not sent" (and a ``skipped`` progress event). Without an
    ``audit_context`` nothing is audited (the caller audits). ``specs`` gives some targets an
    action of their own (a rollback to each one's own earlier revision).
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    if len(set(targets)) != len(targets):
        raise ValueError("a target appears twice in the batch")
    lock = threading.Lock()

    def report(event: Progress) -> None:
        if on_progress is None:
            return
        with lock:  # one callback at a time: a target's events never overtake each other
            on_progress(event)

    def audit_one(
        chosen: ActionSpec, result: ActionResult, before: Mapping[str, object] | None
    ) -> ActionResult:
        if audit_context is None:
            return result
        parameters = chosen.parameters()
        if before is not None:
            parameters["before"] = dict(before)
        try:
            audit_result(audit_context, chosen.action, result, parameters)
        except OSError as exc:  # the change is made; say the record is missing, do not hide it
            return dataclasses.replace(
                result, message=f"{result.message} (audit log not written: {exc})"
            )
        return result

    for target in targets:
        report(Progress(target_name(target), TargetState.PENDING))
    rows_before = None if audit_context is None or dry_run else rows_of(backend, targets)

    def one(target: Target) -> ActionResult:
        name = target_name(target)
        if stop is not None and stop.is_set():
            result = ActionResult(name, False, "not sent: the batch was stopped", dry_run)
            report(Progress(name, TargetState.SKIPPED, result.message, result))
            return result
        chosen = spec if specs is None else specs.get(target, spec)
        report(Progress(name, TargetState.RUNNING, chosen.describe()))
        before = state_before(rows_before, target) if rows_before is not None else None
        result = audit_one(chosen, call_action(backend, chosen, target, dry_run), before)
        state = TargetState.OK if result.ok else TargetState.FAILED
        report(Progress(name, state, result.message, result))
        return result

    if not targets:
        return []
    workers = min(max_parallel, len(targets))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetdeck-batch") as pool:
        return list(pool.map(one, targets))
