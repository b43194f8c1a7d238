"""Undo a change: put each deployment it touched back as it was before it, through the usual
path (guard, dry run, the audit line naming the change it undoes).

A deployment is only put back while it is as the change left it: one changed since (a newer
rollout, a scale) is refused with what to do, so an undo never throws away a later change
it did not see. A batch is undone by its abort, which rolls back what it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from console.audit import AuditContext
from console.backends.base import Backend
from console.batch.runner import ActionSpec
from console.changes.model import Affected, Change, Key, Kind
from console.core.actions import Actor, OnTargets, Outcome, perform
from console.core.guard import Guard
from console.model import DeploymentState, ModelDeployment

# The deployment as a backend's cache has it now, by cluster.
Current = Callable[[str, Key], ModelDeployment | None]


class UndoRefused(Exception):
    """The change cannot be undone; the message says why and what to do instead."""


@dataclass(frozen=True)
class UndoStep:
    affected: Affected
    spec: ActionSpec
    now: str  # the deployment as it is now, in words


@dataclass(frozen=True)
class UndoPlan:
    change: Change
    steps: tuple[UndoStep, ...] = ()
    refused: tuple[tuple[Affected, str], ...] = ()  # deployments left as they are, and why
    batch: str = ""  # undo by aborting this batch

    @property
    def clusters(self) -> list[str]:
        return sorted({s.affected.cluster for s in self.steps})

    def lines(self) -> list[str]:
        """The preview: exactly what will change, and what will not and why."""
        change = self.change
        head = f"undo {change.id}: {change.what}"
        if self.batch:
            return [
                head,
                f"  abort batch {self.batch}: roll back every deployment it changed "
                f"({len(change.affected)})",
            ]
        lines = [head]
        for step in self.steps:
            lines.append(f"  {step.affected.where}: {_describe(step)}")
        for affected, why in self.refused:
            lines.append(f"  {affected.where}: left as it is: {why}")
        return lines


def plan_undo(change: Change, current: Current) -> UndoPlan:
    """What undoing ``change`` would do now. Raises :class:`UndoRefused` when nothing can be."""
    if change.why_not or not change.affected:
        raise UndoRefused(f"change {change.id} ({change.what}): {change.undo_refusal()}")
    if change.kind is Kind.BATCH and change.abortable:
        return UndoPlan(change, batch=change.batch)
    steps: list[UndoStep] = []
    refused: list[tuple[Affected, str]] = []
    for affected in change.affected:
        row = current(affected.cluster, affected.key)
        # A later change first: undoing this one would throw that one away.
        why = _changed_since(affected, row)
        if not why and affected.undo is None:
            why = affected.why_not or "nothing to undo"
        if why or affected.undo is None or row is None:
            refused.append((affected, why))
            continue
        steps.append(UndoStep(affected, affected.undo, _now(row)))
    if not steps:
        reasons = "; ".join(f"{a.where}: {why}" for a, why in refused)
        raise UndoRefused(f"change {change.id} ({change.what}) cannot be undone: {reasons}")
    return UndoPlan(change, tuple(steps), tuple(refused))


def _changed_since(affected: Affected, row: ModelDeployment | None) -> str:
    if row is None:
        return "it no longer exists"
    if affected.expect_revision is not None and row.revision != affected.expect_revision:
        return (
            f"changed since: it is at revision {row.revision}, this change left revision "
            f"{affected.expect_revision}; undo the newer change first"
        )
    if affected.expect_replicas is not None and row.desired != affected.expect_replicas:
        return (
            f"changed since: it wants {row.desired} replicas, this change left "
            f"{affected.expect_replicas}; undo the newer change first"
        )
    paused = row.state is DeploymentState.PAUSED
    if affected.expect_paused is not None and paused != affected.expect_paused:
        now, left = ("paused", "running") if paused else ("running", "paused")
        return (
            f"changed since: it is {now}, this change left it {left}; undo the newer change first"
        )
    return ""


def _now(row: ModelDeployment) -> str:
    return f"{row.model} v{row.version} (rev {row.revision}), {row.desired} replicas"


def _describe(step: UndoStep) -> str:
    spec = step.spec
    if spec.action == "rollback":
        return f"roll back to revision {spec.to_revision} ({step.affected.before}); now {step.now}"
    if spec.action == "scale":
        return f"scale back to {spec.replicas} replicas; now {step.now}"
    if spec.action == "delete":
        return f"delete it (it did not exist before this change); now {step.now}"
    return f"{spec.action}; now {step.now}"


@dataclass(frozen=True)
class _Naming:
    """An actor whose audit lines name the change they undo."""

    backend: Backend
    guard: Guard
    audit: AuditContext


def undo(
    plan: UndoPlan,
    actor_of: Callable[[str], Actor],
    current: Current,
    *,
    dry_run: bool = False,
) -> tuple[list[Outcome], list[tuple[Affected, str]]]:
    """Send the plan's steps, one request per cluster, each audited with ``undoes``; a
    deployment changed between the plan and now (while the operator read it) is left as it
    is, and returned with why. The guard refuses (:class:`console.core.guard.Refusal`)
    before anything is sent. A batch's abort is the batch engine's business."""
    if plan.batch:
        raise ValueError("a batch is undone by its abort")
    outcomes: list[Outcome] = []
    late: list[tuple[Affected, str]] = []
    for cluster in plan.clusters:
        actor = actor_of(cluster)
        steps = []
        for step in (s for s in plan.steps if s.affected.cluster == cluster):
            why = _changed_since(step.affected, current(cluster, step.affected.key))
            if why:
                late.append((step.affected, why))
            else:
                steps.append(step)
        if not steps:
            continue
        naming = _Naming(
            actor.backend,
            actor.guard,
            replace(actor.audit, extra={**actor.audit.extra, "undoes": plan.change.id}),
        )
        request = OnTargets(
            steps[0].spec,
            tuple(s.affected.key for s in steps),
            specs={s.affected.key: s.spec for s in steps},
        )
        outcomes.append(perform(naming, request, dry_run=dry_run))
    return outcomes, late


def find(changes: Sequence[Change], wanted: str) -> Change:
    """The change whose id starts with ``wanted`` (at least 4 characters), or that has a
    member so named (a batch's own revision, one deployment of a command over several, as the
    deck's banner names them): the undo is the whole change's."""
    text = wanted.strip().lower()
    if len(text) < 4 or not all(c in "0123456789abcdef" for c in text):
        raise UndoRefused(
            f"{wanted!r} is not a change id: 4 to 7 hex digits, as `fleetdeck changes` shows"
        )
    found = [c for c in changes if any(i.startswith(text) for i in (c.id, *c.members))]
    if not found:
        raise UndoRefused(f"no change {text} in the timeline (see `fleetdeck changes --since 1d`)")
    if len(found) > 1:
        raise UndoRefused(f"change id {text} is ambiguous: {', '.join(c.id for c in found)}")
    return found[0]
