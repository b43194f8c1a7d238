"""Every mutation, one way for every front-end: the guard's check (read-only, RBAC), the
backend call, the audit lines, the result.

A front-end builds a typed request (:data:`Request`), asks for confirmation if it wants one
(that is its business), and calls :func:`perform`. The rule for the audit log, the same from
the CLI and the deck: one line per target, with the batch's id when there is one, and the
parameters as structured values (a sweep's grid as a mapping of lists, not the typed text).

A batch in waves is checked here too (:func:`check_plan`): the guard, the targets, and the
server's dry run of every target (audited, one line per target) before a journal is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from console.audit import AuditContext, TargetResult
from console.backends.base import Autoscaling, Backend
from console.batch import preflight
from console.batch.executor import dry_run as plan_dry_run
from console.batch.plan import Plan
from console.batch.runner import ActionSpec as ActionSpec  # what OnTargets carries
from console.batch.runner import ProgressCallback, Target, run_batch
from console.core.guard import Guard, Mutation
from console.model import (
    ActionResult,
    AutoscaleRequest,
    DeployRequest,
    ScoringRequest,
    TrainingRequest,
)

DEFAULT_PARALLEL = 10


class Actor(Protocol):
    """Who acts and through what: a :class:`console.core.session.Session`, or the deck's
    context (the same three things)."""

    @property
    def backend(self) -> Backend: ...
    @property
    def guard(self) -> Guard: ...
    @property
    def audit(self) -> AuditContext: ...


class Unsupported(Exception):
    """The profile's backend cannot do this (a backend without the Autoscaling capability
    asked to autoscale); says which."""


class PlanRefused(Exception):
    """A batch plan that must not start; the message says why and that nothing was sent."""


# -- the requests -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deploy:
    request: DeployRequest
    verify: bool = True  # check the version is in the profile's store first
    action: ClassVar[Mutation] = "deploy"


@dataclass(frozen=True)
class OnTargets:
    """rollout, rollback, restart, pause, resume, scale or delete on deployments."""

    spec: ActionSpec
    targets: tuple[Target, ...]
    # Some targets' own parameters of the same action (an undo: each back to its own revision).
    specs: Mapping[Target, ActionSpec] | None = None

    def __post_init__(self) -> None:
        if self.specs and any(s.action != self.spec.action for s in self.specs.values()):
            raise ValueError("every target of one request takes the same action")

    @property
    def action(self) -> Mutation:
        return self.spec.action


@dataclass(frozen=True)
class Train:
    """A training job, or a sweep (one job per combination of the grid)."""

    request: TrainingRequest
    action: ClassVar[Mutation] = "train"


@dataclass(frozen=True)
class Score:
    request: ScoringRequest
    verify: bool = True
    action: ClassVar[Mutation] = "score"


@dataclass(frozen=True)
class Cancel:
    namespace: str
    jobs: tuple[str, ...]
    action: ClassVar[Mutation] = "cancel"


@dataclass(frozen=True)
class Autoscale:
    namespace: str
    request: AutoscaleRequest
    action: ClassVar[Mutation] = "autoscale"


Request = Deploy | OnTargets | Train | Score | Cancel | Autoscale


@dataclass(frozen=True)
class Outcome:
    """What came back: one result per target, and why the audit log is missing a line
    ("" when every line was written; the change is made either way)."""

    action: Mutation
    results: tuple[ActionResult, ...]
    dry_run: bool
    audit_error: str = ""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


# -- the one path -------------------------------------------------------------------------------
def perform(
    actor: Actor,
    request: Request,
    *,
    dry_run: bool = False,
    max_parallel: int = DEFAULT_PARALLEL,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Check, send, audit. Raises :class:`console.core.guard.Refusal` before anything is sent
    when the guard refuses, :class:`Unsupported` when the backend cannot do it, ValueError for
    a request that makes no sense. ``on_progress`` and ``stop`` are for actions on targets
    (sent ``max_parallel`` at a time)."""
    backend = actor.backend
    actor.guard.check(request.action, namespaces_of(backend, request))  # refusals first
    if isinstance(request, Autoscale):
        if not isinstance(backend, Autoscaling):
            raise Unsupported(f"autoscale needs a Kubernetes profile (this one is {backend.name})")
        problems = request.request.problems()
        if problems:
            raise ValueError("; ".join(problems))
    if isinstance(request, OnTargets):
        # Audited as each target's answer comes back: a console killed mid-batch still
        # leaves a record of what it did.
        results = run_batch(
            backend,
            request.spec,
            request.targets,
            max_parallel=max(1, max_parallel),
            dry_run=dry_run,
            on_progress=on_progress,
            stop=stop,
            audit_context=actor.audit,
            specs=request.specs,
        )
        return Outcome(request.action, tuple(results), dry_run)
    results = _send(backend, request, dry_run)
    problem = audit_each(actor.audit, request.action, results, parameters_of(request), dry_run)
    return Outcome(request.action, tuple(results), dry_run, problem)


def namespaces_of(backend: Backend, request: Request) -> list[str]:
    """The namespaces a request acts in: what the guard asks about."""
    if isinstance(request, OnTargets):
        return sorted({namespace for namespace, _ in request.targets})
    if isinstance(request, Cancel | Autoscale):
        return [request.namespace]
    return [request.request.namespace or backend.default_namespace]


def _send(backend: Backend, request: Request, dry_run: bool) -> list[ActionResult]:
    if isinstance(request, Deploy):
        return [backend.deploy(request.request, dry_run=dry_run, verify=request.verify)]
    if isinstance(request, Train):
        return backend.train(request.request, dry_run=dry_run)
    if isinstance(request, Score):
        return [backend.score(request.request, dry_run=dry_run, verify=request.verify)]
    if isinstance(request, Cancel):
        return [backend.cancel_job(request.namespace, job, dry_run=dry_run) for job in request.jobs]
    if isinstance(request, Autoscale):
        assert isinstance(backend, Autoscaling)  # perform checked it
        return [backend.autoscale(request.namespace, request.request, dry_run=dry_run)]
    raise TypeError(f"not sent one at a time: {request!r}")


def parameters_of(request: Request) -> dict[str, object]:
    """What the audit log keeps of a request: structured values, as typed by nobody."""
    if isinstance(request, Deploy):
        deploy = request.request
        return {
            "model": deploy.model,
            "version": deploy.version,
            "replicas": deploy.replicas,
            "gpus": deploy.gpus,
        }
    if isinstance(request, OnTargets):
        return request.spec.parameters()
    if isinstance(request, Train):
        train = request.request
        return {
            "model": train.model,
            "data": train.data,
            "gpus": train.gpus,
            "epochs": train.epochs,
            "params": dict(train.params),
            "grid": {key: list(values) for key, values in train.grid.items()},
        }
    if isinstance(request, Score):
        score = request.request
        return {
            "model": score.model,
            "version": score.version,
            "input": score.input,
            "batch_size": score.batch_size,
        }
    if isinstance(request, Autoscale):
        scaling = request.request
        return {
            "min": scaling.min_replicas,
            "max": scaling.max_replicas,
            "cpu": scaling.cpu_percent,
            "rps_per_pod": scaling.rps_per_pod,
            "scale_down_seconds": scaling.scale_down_seconds,
        }
    return {}


def audit_each(
    context: AuditContext,
    action: str,
    results: Iterable[ActionResult],
    parameters: Mapping[str, object],
    dry_run: bool,
) -> str:
    """One audit line per target; "" or why a line could not be written."""
    problems: list[str] = []
    for result in results:
        try:
            context.write(
                action,
                [result.target],
                [TargetResult(result.target, result.ok, result.message)],
                parameters,
                dry_run=dry_run,
            )
        except OSError as exc:
            problems.append(str(exc))
    return f"could not write the audit log: {problems[0]}" if problems else ""


# -- a batch in waves ---------------------------------------------------------------------------
def check_plan(actor: Actor, plan: Plan, *, requested: bool = False) -> list[ActionResult]:
    """Before a plan starts: the guard and the targets (:mod:`console.batch.preflight`), then
    the server's dry run of every target, audited (one line per target; ``requested``: the
    operator asked for the dry run, rather than it being the check before a real run).
    Raises :class:`PlanRefused` when the plan must not start; with ``requested`` the refused
    targets come back as results instead."""
    problems = preflight.problems(actor.backend, plan, actor.guard)
    if problems:
        raise PlanRefused("; ".join(problems))
    checked = plan_dry_run(actor.backend, plan.spec, plan.targets, plan.max_parallel)
    parameters = {**plan.spec.parameters(), "batch_plan": True, "requested": requested}
    audit_problem = audit_each(actor.audit, plan.spec.action, checked, parameters, True)
    refused = [r for r in checked if not r.ok]
    if refused and not requested:
        raise PlanRefused(refused_text(refused, len(checked)))
    if audit_problem:
        checked = [_noted(r, audit_problem) for r in checked]
    return checked


def refused_text(refused: Sequence[ActionResult], checked: int, shown: int = 5) -> str:
    listed = "; ".join(f"{r.target}: {r.message}" for r in refused[:shown])
    more = f" and {len(refused) - shown} more" if len(refused) > shown else ""
    return (
        f"the server refused {len(refused)} of {checked} targets in the dry run "
        f"({listed}{more}); nothing was sent"
    )


def _noted(result: ActionResult, note: str) -> ActionResult:
    return ActionResult(
        result.target, result.ok, f"{result.message} ({note})", result.dry_run, result.changes
    )
