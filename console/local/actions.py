"""The mutations, as the agent applies them to its desired state: checked first (a dry run
stops there and says what would change), then written in one transaction. Processes follow
when the fleet reconciles.

Every argument comes from a client and is untrusted: each action checks its names (DNS-1123
labels, the store's model rule) and numbers before it reads the state or touches a file, and
raises :class:`InvalidName` or :class:`BadArgument`, which the API answers with 400.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from console.autoscaling import DEFAULT_SCALE_DOWN_WINDOW
from console.local.autoscaler import target_text
from console.local.errors import BadArgument
from console.local.fleet import Fleet
from console.local.jobs import PENDING, RUNNING, SCORE, JobRunner
from console.local.state import DeploymentRow, JobRow, RevisionRow, State, now
from console.model import ActionResult, AutoscaleRequest
from console.names import InvalidName, check_label, job_name_base
from serving.store import ModelStore, StoreError, check_model_name

TRAINING_FLAGS = ("learning_rate", "batch_size", "epochs")
Scalar = str | int | float | bool


# -- checking what a client sent ------------------------------------------------------------
def _target(namespace: object, name: object, what: str = "deployment name") -> str:
    """``namespace/name`` once both are labels."""
    return f"{check_label(namespace, 'namespace')}/{check_label(name, what)}"


def _model(model: object) -> str:
    if not isinstance(model, str):
        raise BadArgument(f"model must be a model's name, got {model!r}")
    try:
        return check_model_name(model)
    except StoreError as exc:
        raise InvalidName(str(exc)) from None


def _count(value: object, what: str, minimum: int) -> int:
    # bool is an int to Python, never a count to a person.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArgument(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise BadArgument(f"{what} must be {minimum} or more, got {value}")
    return value


def _optional_count(value: object, what: str, minimum: int) -> int | None:
    return None if value is None else _count(value, what, minimum)


def _rate(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadArgument(f"{what} must be a number, got {value!r}")
    return float(value)


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadArgument(f"{what} must be true or false, got {value!r}")
    return value


def _text(value: object, what: str) -> str:
    """Free text that ends up in a command line, a log or a terminal: printable, one line."""
    if not isinstance(value, str) or not value.isprintable():
        raise BadArgument(f"{what} must be printable text on one line, got {value!r}")
    return value


def _scalar(value: object, what: str) -> Scalar:
    if isinstance(value, str):
        return _text(value, what)
    if isinstance(value, (bool, int, float)):
        return value
    raise BadArgument(f"{what} must be a string or a number, got {value!r}")


def _param_key(key: object) -> str:
    # The child reads --param=KEY=VALUE up to the first '=': a key holding one means another key.
    if not isinstance(key, str) or not key or "=" in key or not key.isprintable():
        raise BadArgument(f"parameter name {key!r}: printable text without '='")
    return key


def _params(value: object) -> dict[str, Scalar]:
    if not isinstance(value, Mapping):
        raise BadArgument(f"params must be an object of name: value, got {value!r}")
    return {_param_key(k): _scalar(v, f"parameter {k}") for k, v in value.items()}


def _grid(value: object) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(value, Mapping):
        raise BadArgument(f"grid must be an object of name: [values], got {value!r}")
    grid: dict[str, tuple[Scalar, ...]] = {}
    for key, values in value.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise BadArgument(f"grid {key!r} must be a list of values, got {values!r}")
        grid[_param_key(key)] = tuple(_scalar(v, f"grid value of {key}") for v in values)
    return grid


def change_cause(action: str, user: str) -> str:
    return f"{action} by {user} via fleetdeck"


class Actions:
    def __init__(self, state: State, fleet: Fleet, jobs: JobRunner, store: str) -> None:
        self.state = state
        self.fleet = fleet
        self.jobs = jobs
        self.store_root = store
        self.store = ModelStore(store)
        # One change at a time: two CLIs deploying at once are applied one after the other.
        self.lock = asyncio.Lock()

    def _unpaused(
        self, namespace: str, name: str, target: str, dry_run: bool
    ) -> tuple[DeploymentRow, RevisionRow | None] | ActionResult:
        """The deployment and its current revision, or why it cannot get a new revision (not
        there, or paused). Call under ``self.lock``."""
        row = self.state.deployment(namespace, name)
        if row is None:
            return _not_found(target, name, namespace, dry_run)
        if row.paused:
            return _paused(target, name, dry_run)
        return row, self.state.revision(namespace, name, row.revision)

    async def _verify(self, model: str, version: int) -> str:
        try:
            await asyncio.to_thread(self.store.manifest, model, version)
        except StoreError as exc:
            return str(exc)
        return ""

    async def deploy(
        self,
        namespace: str,
        name: str,
        model: str,
        version: int,
        replicas: int,
        gpus: int,
        *,
        dry_run: bool,
        verify: bool,
        user: str,
    ) -> ActionResult:
        target = _target(namespace, name)
        _model(model)
        _count(version, "version", 1)
        _count(replicas, "replicas", 1)
        _count(gpus, "gpus", 0)
        _flag(dry_run, "dry_run")
        _flag(verify, "verify")
        _text(user, "user")
        if gpus:
            return ActionResult(
                target,
                False,
                "the local runtime runs predictors on this machine's CPU; --gpus needs a "
                "Kubernetes profile (e.g. --profile kwok)",
                dry_run,
            )
        async with self.lock:
            if self.state.deployment(namespace, name) is not None:
                return ActionResult(
                    target,
                    False,
                    f"{name} already exists in {namespace}; roll it out to another version "
                    f"instead (fleetdeck rollout {name} --version N)",
                    dry_run,
                )
            if verify and (refusal := await self._verify(model, version)):
                return ActionResult(target, False, refusal, dry_run)
            changes = (
                f"+ predictor {name}: {model} version {version} x {replicas} "
                f"replica{'s' if replicas > 1 else ''}",
                f"+ gateway route /models/{name}/",
            )
            if dry_run:
                return ActionResult(target, True, f"would create {name}", True, changes)
            cause = change_cause(f"deploy {model} v{version}", user)
            self.state.create_deployment(namespace, name, model, version, replicas, cause)
            self.fleet.new_rollout((namespace, name))
            self.fleet.event((namespace, name), "Created", f"{model} version {version}")
        return ActionResult(target, True, f"created {name}", False, changes)

    async def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool, verify: bool, user: str
    ) -> ActionResult:
        target = _target(namespace, name)
        _count(version, "version", 1)
        _flag(dry_run, "dry_run")
        _flag(verify, "verify")
        _text(user, "user")
        async with self.lock:
            found = self._unpaused(namespace, name, target, dry_run)
            if isinstance(found, ActionResult):
                return found
            row, current = found
            if current is not None and current.version == version:
                return ActionResult(target, True, f"{name}: nothing to change", dry_run)
            if verify and (refusal := await self._verify(row.model, version)):
                return ActionResult(target, False, refusal, dry_run)
            what = f"{name} out to {row.model} version {version}"
            changes = (f"~ version {current.version if current else '?'} -> {version}",)
            if dry_run:
                return ActionResult(target, True, f"would roll {what}", True, changes)
            cause = change_cause(f"rollout {row.model} v{version}", user)
            self.state.new_revision(namespace, name, row.model, version, cause)
            self.fleet.new_rollout(row.key)
        return ActionResult(target, True, f"rolled {what}", False, changes)

    async def rollback(
        self, namespace: str, name: str, to_revision: int, *, dry_run: bool, user: str
    ) -> ActionResult:
        target = _target(namespace, name)
        _count(to_revision, "to_revision", 0)  # 0: the one before the current
        _flag(dry_run, "dry_run")
        _text(user, "user")
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if row.paused:
                return ActionResult(
                    target,
                    False,
                    f"deployment {name!r} is paused; resume it before rolling back "
                    "(fleetdeck resume)",
                    dry_run,
                )
            numbers = [r.number for r in self.state.revisions(namespace, name)]
            if not to_revision:
                earlier = [n for n in numbers if n < row.revision]
                if not earlier:
                    return ActionResult(
                        target,
                        False,
                        f"deployment {name!r} has no earlier revision to roll back to",
                        dry_run,
                    )
                to_revision = earlier[-1]
            chosen = self.state.revision(namespace, name, to_revision)
            if chosen is None:
                known = ", ".join(map(str, numbers)) or "none"
                return ActionResult(
                    target,
                    False,
                    f"deployment {name!r} has no revision {to_revision} (revisions: {known})",
                    dry_run,
                )
            if to_revision == row.revision:
                return ActionResult(
                    target,
                    True,
                    f"skipped: deployment {name!r} already matches revision {to_revision}",
                    dry_run,
                )
            what = f"{name} back to revision {to_revision}"
            changes = (f"~ version -> {chosen.version} (revision {to_revision})",)
            if dry_run:
                return ActionResult(target, True, f"would roll {what}", True, changes)
            cause = change_cause(f"rollback to revision {to_revision}", user)
            number = self.state.new_revision(
                namespace, name, chosen.model, chosen.version, cause, moved=to_revision
            )
            self.fleet.new_rollout(row.key)
            if row.serving_revision == to_revision:
                # Back to what still serves (a failed rollout): as kubectl's undo reuses the old
                # ReplicaSet, its running predictors become the new revision; nothing restarts.
                self.fleet.renumber(row.key, to_revision, number)
                self.state.update_deployment(namespace, name, serving_revision=number)
        return ActionResult(target, True, f"rolled {what}", False, changes)

    async def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool
    ) -> ActionResult:
        """As ``kubectl scale`` with an HPA: done, and the autoscaler (if there is one) sets
        the count again at its next evaluation; the message says so."""
        target = _target(namespace, name)
        _count(replicas, "replicas", 0)
        _flag(dry_run, "dry_run")
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if replicas == row.replicas:
                return ActionResult(target, True, f"{name}: nothing to change", dry_run)
            changes = (f"~ replicas {row.replicas} -> {replicas}",)
            scaler = self.state.autoscaler(namespace, name)
            note = ""
            if scaler is not None:
                note = (
                    f"; its autoscaler ({scaler.min_replicas}..{scaler.max_replicas} replicas at "
                    f"{target_text(scaler.rps_per_pod)}) sets the count again at its next "
                    "evaluation, as an HPA does"
                )
            if dry_run:
                return ActionResult(
                    target, True, f"would scale {name} to {replicas}{note}", True, changes
                )
            self.state.update_deployment(namespace, name, replicas=replicas)
        return ActionResult(target, True, f"scaled {name} to {replicas}{note}", False, changes)

    async def autoscale(
        self,
        namespace: str,
        name: str,
        min_replicas: int,
        max_replicas: int,
        cpu_percent: int | None = None,
        rps_per_pod: float | None = None,
        scale_down_seconds: int | None = None,
        *,
        dry_run: bool,
        user: str,
    ) -> ActionResult:
        """Create the deployment's autoscaler, or update it (see console.local.autoscaler)."""
        target = _target(namespace, name)
        request = AutoscaleRequest(
            name,
            _count(min_replicas, "min_replicas", 0),
            _count(max_replicas, "max_replicas", 0),
            _optional_count(cpu_percent, "cpu_percent", 0),
            None if rps_per_pod is None else _rate(rps_per_pod, "rps_per_pod"),
            _optional_count(scale_down_seconds, "scale_down_seconds", 0),
        )
        _flag(dry_run, "dry_run")
        _text(user, "user")
        problems = request.problems()
        if problems:
            raise BadArgument("; ".join(problems))
        if request.rps_per_pod is None:
            return ActionResult(
                target,
                False,
                "the local runtime scales on requests per second per replica (--rps-per-pod "
                "N): its predictors have no CPU request for a utilisation to be a percentage "
                "of; --cpu needs a Kubernetes profile",
                dry_run,
            )
        rps = request.rps_per_pod
        window = scale_down_seconds
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            wanted = {
                "min_replicas": request.min_replicas,
                "max_replicas": request.max_replicas,
                "target": target_text(rps),
                "scale_down_window": _window_text(window),
            }
            existing = self.state.autoscaler(namespace, name)
            if existing is None:
                verb = "would create" if dry_run else "created"
                changes = tuple(f"+ autoscaler {k}: {v}" for k, v in wanted.items())
            else:
                before = {
                    "min_replicas": existing.min_replicas,
                    "max_replicas": existing.max_replicas,
                    "target": target_text(existing.rps_per_pod),
                    "scale_down_window": _window_text(existing.scale_down_seconds),
                }
                changes = tuple(
                    f"~ autoscaler {k}: {before[k]} -> {v}"
                    for k, v in wanted.items()
                    if before[k] != v
                )
                if not changes:
                    return ActionResult(
                        target, True, f"autoscaler already {_described(request)}", dry_run
                    )
                verb = "would update" if dry_run else "updated"
            bounded = min(max(row.replicas, request.min_replicas), request.max_replicas)
            if bounded != row.replicas:
                changes += (f"~ replicas {row.replicas} -> {bounded} (the bounds, at once)",)
            if not dry_run:
                self.state.put_autoscaler(
                    namespace, name, request.min_replicas, request.max_replicas, rps, window
                )
        return ActionResult(
            target, True, f"{verb} autoscaler: {_described(request)}", dry_run, changes
        )

    async def restart(self, namespace: str, name: str, *, dry_run: bool, user: str) -> ActionResult:
        target = _target(namespace, name)
        _flag(dry_run, "dry_run")
        _text(user, "user")
        async with self.lock:
            found = self._unpaused(namespace, name, target, dry_run)
            if isinstance(found, ActionResult):
                return found
            row, current = found
            if current is None:
                return ActionResult(target, False, f"{name} has no revision to restart", dry_run)
            changes = (f"~ new revision of version {current.version}: fresh predictors",)
            if dry_run:
                return ActionResult(target, True, f"would restart {name}", True, changes)
            self.state.new_revision(
                namespace, name, current.model, current.version, change_cause("restart", user)
            )
            self.fleet.new_rollout(row.key)
        return ActionResult(target, True, f"restarted {name}", False, changes)

    async def set_paused(
        self, namespace: str, name: str, paused: bool, *, dry_run: bool
    ) -> ActionResult:
        target = _target(namespace, name)
        _flag(paused, "paused")
        _flag(dry_run, "dry_run")
        verb = "pause" if paused else "resume"
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if row.paused == paused:
                return ActionResult(target, True, f"{name}: nothing to change", dry_run)
            changes = (f"~ paused {row.paused} -> {paused}",)
            if dry_run:
                return ActionResult(target, True, f"would {verb} {name}", True, changes)
            self.state.update_deployment(namespace, name, paused=int(paused))
        return ActionResult(target, True, f"{verb}d {name}", False, changes)

    async def delete(self, namespace: str, name: str, *, dry_run: bool) -> ActionResult:
        target = _target(namespace, name)
        _flag(dry_run, "dry_run")
        async with self.lock:
            if self.state.deployment(namespace, name) is None:
                return _not_found(target, name, namespace, dry_run)
            changes: tuple[str, ...] = (
                f"- predictor {name} and its processes",
                f"- gateway route /models/{name}/",
            )
            if self.state.autoscaler(namespace, name) is not None:
                changes += (f"- autoscaler {name}",)
            if dry_run:
                return ActionResult(target, True, f"would delete {name}", True, changes)
            self.state.delete_deployment(namespace, name)
        return ActionResult(target, True, f"deleted {name}", False, changes)

    # -- training ---------------------------------------------------------------------------
    async def train(
        self,
        namespace: str,
        model: str,
        data: str,
        gpus: int,
        epochs: int | None,
        params: Mapping[str, Any],
        grid: Mapping[str, Sequence[Any]],
        *,
        dry_run: bool,
    ) -> list[ActionResult]:
        check_label(namespace, "namespace")
        _model(model)
        _text(data, "data")
        _count(gpus, "gpus", 0)
        _optional_count(epochs, "epochs", 1)
        params = _params(params)
        grid = _grid(grid)
        _flag(dry_run, "dry_run")
        base = job_name_base("train", model)
        suffix = uuid.uuid4().hex[:5]
        keys = list(grid)
        trials = [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))
        ] or [{}]
        sweep = f"{job_name_base('sweep', model)}-{suffix}" if grid else None
        rows, results = [], []
        for number, choice in enumerate(trials):
            name = f"{base}-{suffix}" + (f"-{number}" if sweep else "")
            flags = {k: v for k, v in choice.items() if k in TRAINING_FLAGS}
            if epochs is not None:
                flags.setdefault("epochs", epochs)
            args = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
            merged = {**params, **{k: v for k, v in choice.items() if k not in TRAINING_FLAGS}}
            args += [f"--param={k}={v}" for k, v in merged.items()]
            rows.append(
                JobRow(
                    namespace,
                    name,
                    model,
                    data,
                    tuple(args),
                    gpus,
                    sweep,
                    number if sweep else None,
                    PENDING,
                    "",
                    now(),
                    None,
                    None,
                )
            )
            verb = "would create" if dry_run else "created"
            results.append(
                ActionResult(
                    f"{namespace}/{name}",
                    True,
                    f"{verb} training job {name}",
                    dry_run,
                    (f"+ job {name}: python -m training {' '.join(args)}".rstrip(),),
                )
            )
        if not dry_run:
            async with self.lock:
                self.state.add_jobs(rows)
            self.jobs.start_pending()
        return results

    async def score(
        self,
        namespace: str,
        model: str,
        version: int,
        inputs: str,
        batch_size: int | None,
        *,
        dry_run: bool,
        verify: bool = True,
    ) -> ActionResult:
        """A scoring job (``python -m training.score``) for a version the store has."""
        check_label(namespace, "namespace")
        _model(model)
        _count(version, "version", 1)
        _text(inputs, "inputs")
        _optional_count(batch_size, "batch_size", 1)
        _flag(dry_run, "dry_run")
        _flag(verify, "verify")
        name = f"{job_name_base('score', model)}-{uuid.uuid4().hex[:5]}"
        target = f"{namespace}/{name}"
        if verify and (refusal := await self._verify(model, version)):
            return ActionResult(target, False, refusal, dry_run)
        args = ["--version", str(version)]
        if batch_size is not None:
            args += ["--batch-size", str(batch_size)]
        row = JobRow(
            namespace,
            name,
            model,
            inputs,
            tuple(args),
            0,
            None,
            None,
            PENDING,
            "",
            now(),
            None,
            None,
            kind=SCORE,
        )
        change = f"+ job {name}: python -m training.score --model {model} --input {inputs} " + (
            " ".join(args)
        )
        if not dry_run:
            async with self.lock:
                self.state.add_jobs([row])
            self.jobs.start_pending()
        verb = "would create" if dry_run else "created"
        return ActionResult(target, True, f"{verb} scoring job {name}", dry_run, (change,))

    async def cancel_job(self, namespace: str, name: str, *, dry_run: bool) -> ActionResult:
        target = _target(namespace, name, "job name")
        _flag(dry_run, "dry_run")
        job = self.state.job(namespace, name)
        if job is None:
            return ActionResult(
                target, False, f"job {name!r} not found in namespace {namespace}", dry_run
            )
        if job.phase not in (PENDING, RUNNING):
            return ActionResult(
                target, False, f"{_what(job)} {name!r} already ended ({job.phase})", dry_run
            )
        if dry_run:
            return ActionResult(target, True, f"would cancel job {name}", True)
        self.jobs.cancel(namespace, name)
        return ActionResult(target, True, f"cancelled job {name} (SIGTERM; nothing is published)")


def _window_text(seconds: int | None) -> str:
    if seconds is None:
        return f"{DEFAULT_SCALE_DOWN_WINDOW} s (the HPA's default)"
    return f"{seconds} s"


def _described(request: AutoscaleRequest) -> str:
    """As the Kubernetes backend says it, with the window when one is set."""
    text = request.describe()
    if request.scale_down_seconds is not None:
        text += f", scale-down window {request.scale_down_seconds} s"
    return text


def _what(job: JobRow) -> str:
    return "scoring job" if job.kind == SCORE else "training job"


def _paused(target: str, name: str, dry_run: bool) -> ActionResult:
    return ActionResult(
        target, False, f"{name} is paused; resume it first (fleetdeck resume)", dry_run
    )


def _not_found(target: str, name: str, namespace: str, dry_run: bool) -> ActionResult:
    return ActionResult(
        target, False, f"deployment {name!r} not found in namespace {namespace}", dry_run
    )
