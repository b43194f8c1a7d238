"""The mutations, as the agent applies them to its desired state: checked first (a dry run
stops there and says what would change), then written in one transaction. Processes follow
when the fleet reconciles."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from console.local.fleet import Fleet
from console.local.jobs import PENDING, RUNNING, SCORE, JobRunner
from console.local.state import JobRow, State, now
from console.model import ActionResult
from serving.store import ModelStore, StoreError

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
TRAINING_FLAGS = ("learning_rate", "batch_size", "epochs")


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
        target = f"{namespace}/{name}"
        if not NAME.match(name):
            return ActionResult(
                target,
                False,
                f"invalid name {name!r}: lower-case letters, digits and '-', at most 63",
                dry_run,
            )
        if gpus:
            return ActionResult(
                target,
                False,
                "the local runtime runs predictors on this machine's CPU; --gpus needs a "
                "Kubernetes profile (e.g. --profile kwok)",
                dry_run,
            )
        if replicas < 1:
            return ActionResult(target, False, "replicas must be at least 1", dry_run)
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
        target = f"{namespace}/{name}"
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if row.paused:
                return _paused(target, name, dry_run)
            current = self.state.revision(namespace, name, row.revision)
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
        target = f"{namespace}/{name}"
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
        target = f"{namespace}/{name}"
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if replicas < 0:
                return ActionResult(target, False, "replicas must be 0 or more", dry_run)
            if replicas == row.replicas:
                return ActionResult(target, True, f"{name}: nothing to change", dry_run)
            changes = (f"~ replicas {row.replicas} -> {replicas}",)
            if dry_run:
                return ActionResult(
                    target, True, f"would scale {name} to {replicas}", True, changes
                )
            self.state.update_deployment(namespace, name, replicas=replicas)
        return ActionResult(target, True, f"scaled {name} to {replicas}", False, changes)

    async def restart(self, namespace: str, name: str, *, dry_run: bool, user: str) -> ActionResult:
        target = f"{namespace}/{name}"
        async with self.lock:
            row = self.state.deployment(namespace, name)
            if row is None:
                return _not_found(target, name, namespace, dry_run)
            if row.paused:
                return _paused(target, name, dry_run)
            current = self.state.revision(namespace, name, row.revision)
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
        target = f"{namespace}/{name}"
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
        target = f"{namespace}/{name}"
        async with self.lock:
            if self.state.deployment(namespace, name) is None:
                return _not_found(target, name, namespace, dry_run)
            changes = (f"- predictor {name} and its processes", f"- gateway route /models/{name}/")
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
        base = f"train-{model}"[:40].rstrip("-")
        suffix = uuid.uuid4().hex[:5]
        keys = list(grid)
        trials = [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))
        ] or [{}]
        sweep = f"sweep-{model}-{suffix}" if grid else None
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
        name = f"score-{model}"[:40].rstrip("-") + f"-{uuid.uuid4().hex[:5]}"
        target = f"{namespace}/{name}"
        if version < 1:
            return ActionResult(target, False, "--version must be 1 or more", dry_run)
        if batch_size is not None and batch_size < 1:
            return ActionResult(target, False, "--batch-size must be 1 or more", dry_run)
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
        target = f"{namespace}/{name}"
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
