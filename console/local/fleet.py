"""What runs for the deployments: replica sets per revision, kept in line with the desired state.

``reconcile`` is called whenever anything changes (a mutation, a replica turning ready or
exiting) and on a short tick. For each deployment it keeps the desired revision's replicas at
the wanted count; while another revision serves, it switches the route once every new replica
is ready (blue/green), then drains and stops the old ones. A new revision that reports it will
never be ready, keeps crashing, or misses the progress deadline marks the rollout failed with
the predictor's own reason, and the old revision keeps serving.

Each deployment is reconciled on its own: a row that cannot be acted on (a name that is not a
DNS-1123 label or a model name with a newline left by an older agent, a store that refuses)
marks that deployment Failed with the reason, once in the log and as a Warning event, and every
other deployment goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from console.local.paths import AgentPaths
from console.local.state import DeploymentRow, State, parse_time
from console.local.supervisor import PredictorSpec, Replica
from console.model import DeploymentState, EventInfo, ModelDeployment, PodInfo, RevisionInfo
from console.names import InvalidName
from serving.store import ModelStore, StoreError

log = logging.getLogger(__name__)

CRASHES_BEFORE_FAILED = 3
EVENTS_KEPT = 200
Key = tuple[str, str]


class UnfitRow(Exception):
    """A stored row the fleet will not act on; the message says what is wrong with it."""


# Failures a stored row or the store can cause: said in one line. Anything else is a bug, and
# its traceback goes to the log (once per reason).
EXPECTED_FAILURES = (UnfitRow, InvalidName, StoreError, OSError)


@dataclass(frozen=True)
class FleetSettings:
    store: str
    drain_seconds: float
    max_batch_size: int
    batch_timeout_ms: float
    progress_deadline: float
    default_replicas: int


class Fleet:
    def __init__(
        self,
        state: State,
        settings: FleetSettings,
        paths: AgentPaths,
        http: aiohttp.ClientSession,
        on_change: Callable[[], None],
    ) -> None:
        self.state = state
        self.settings = settings
        self.paths = paths
        self.http = http
        self.on_change = on_change
        self.store = ModelStore(settings.store)
        self.sets: dict[Key, dict[int, list[Replica]]] = {}
        self.serving: dict[Key, int | None] = {}  # the gateway's view, kept without a query
        self.rollout_since: dict[Key, float] = {}
        self.failures: dict[Key, str] = {}
        self.unfit: dict[Key, str] = {}  # deployments that could not be reconciled, and why
        self.events: dict[Key, deque[EventInfo]] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    # -- events -----------------------------------------------------------------------------
    def event(
        self, key: Key, reason: str, message: str, obj: str = "", warning: bool = False
    ) -> None:
        events = self.events.setdefault(key, deque(maxlen=EVENTS_KEPT))
        events.append(
            EventInfo(
                datetime.now(UTC),
                "Warning" if warning else "Normal",
                reason,
                obj or f"Deployment/{key[1]}",
                message,
            )
        )

    def new_rollout(self, key: Key) -> None:
        """A new revision should serve: its deadline and failure start afresh."""
        self.failures.pop(key, None)
        self.rollout_since.pop(key, None)

    def renumber(self, key: Key, old: int, new: int) -> None:
        """Revision ``old`` was moved to number ``new`` (a rollback): same predictors."""
        sets = self.sets.get(key, {})
        if old in sets:
            sets[new] = sets.pop(old)
            for replica in sets[new]:
                replica.revision = new
            self.event(
                key, "RollbackReused", f"revision {old}'s predictors serve as revision {new}"
            )
        if self.serving.get(key) == old:
            self.serving[key] = new

    # -- reconciling ------------------------------------------------------------------------
    def reconcile(self) -> None:
        rows = {row.key: row for row in self.state.deployments()}
        for key in list(self.sets):
            if key not in rows:  # deleted
                self.serving.pop(key, None)
                for number, replicas in self.sets.pop(key).items():
                    self._retire(key, number, replicas)
                self.failures.pop(key, None)
                self.rollout_since.pop(key, None)
                self.events.pop(key, None)
        for key in [k for k in self.unfit if k not in rows]:
            del self.unfit[key]
            self.events.pop(key, None)
        for row in rows.values():
            try:
                self._reconcile(row)
            except Exception as exc:  # this deployment fails; the others still reconcile
                self._unfit(row.key, exc)
            else:
                if self.unfit.pop(row.key, None) is not None:  # the store came back, say
                    self.event(row.key, "Reconciled", "the deployment is reconciled again")
                    self.on_change()

    def _unfit(self, key: Key, exc: Exception) -> None:
        expected = isinstance(exc, EXPECTED_FAILURES)
        reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        if self.unfit.get(key) == reason:  # said already: not again every tick
            return
        self.unfit[key] = reason
        log.warning(
            "deployment %r in namespace %r cannot be reconciled: %s",
            key[1],
            key[0],
            reason,
            exc_info=None if expected else exc,
        )
        self.event(key, "ReconcileFailed", reason, warning=True)
        self.on_change()

    def _reconcile(self, row: DeploymentRow) -> None:
        if row.problem:  # checked before anything runs or any path is built from it
            raise UnfitRow(f"{row.problem}; the agent leaves this deployment alone")
        key, desired, serving = row.key, row.revision, row.serving_revision
        sets = self.sets.setdefault(key, {})
        self.serving[key] = serving
        keep = {desired} | ({serving} if serving is not None else set())
        for number in [n for n in sets if n not in keep]:
            self._retire(key, number, sets.pop(number))
        # What serves first: a new revision that cannot start does not keep the old one down.
        if serving is not None and serving != desired and serving not in sets:
            self._scale(row, serving, row.replicas)  # the agent restarted mid-rollout
        self._scale(row, desired, row.replicas)
        if serving == desired:
            self.rollout_since.pop(key, None)
            self.failures.pop(key, None)
            return
        new = sets[desired]
        if len(new) == row.replicas and all(r.routable for r in new):
            self.state.update_deployment(row.namespace, row.name, serving_revision=desired)
            self.serving[key] = desired
            self.failures.pop(key, None)
            self.rollout_since.pop(key, None)
            self.event(key, "Switched", f"traffic moved to revision {desired}")
            if serving is not None and serving in sets:
                self._retire(key, serving, sets.pop(serving))
            self.on_change()
            return
        started = self.rollout_since.setdefault(key, time.monotonic())
        if key not in self.failures and (why := self._failure(new, started)):
            self.failures[key] = f"revision {desired}: {why}"
            self.event(key, "RolloutFailed", self.failures[key], warning=True)
            self.on_change()

    def _failure(self, replicas: list[Replica], started: float) -> str:
        for replica in replicas:
            if replica.failure:
                return f"{replica.pod}: {replica.failure}"
            if replica.restarts >= CRASHES_BEFORE_FAILED and not replica.ever_ready:
                return f"{replica.pod}: CrashLoopBackOff: {replica.last_exit}"
        if time.monotonic() - started > self.settings.progress_deadline:
            return (
                f"ProgressDeadlineExceeded: not ready within "
                f"{self.settings.progress_deadline:.0f} s"
            )
        return ""

    def _scale(self, row: DeploymentRow, number: int, count: int) -> None:
        replicas = self.sets[row.key].setdefault(number, [])
        if len(replicas) == count:
            return
        revision = self.state.revision(row.namespace, row.name, number)
        if revision is None:
            return
        if revision.problem:
            raise UnfitRow(f"revision {number}: {revision.problem}")
        while len(replicas) > count:
            self._retire(row.key, number, [replicas.pop()])
        used = {r.pod for r in replicas}
        index = 0
        while len(replicas) < count:
            pod = f"{row.name}-{number}-{index}"
            index += 1
            if pod in used:
                continue
            spec = PredictorSpec(
                model_uri=self.store.version_uri(revision.model, revision.version),
                served_name=row.name,
                drain_seconds=self.settings.drain_seconds,
                max_batch_size=self.settings.max_batch_size,
                batch_timeout_ms=self.settings.batch_timeout_ms,
                cache_dir=self.paths.cache,
            )
            log_path = self.paths.pod_log(row.namespace, pod)
            replicas.append(
                Replica(
                    pod, number, spec, log_path, self.http, self.on_change, self._exited(row.key)
                )
            )
        self.event(
            row.key,
            "ScalingReplicaSet",
            f"scaled revision {number} to {count}",
            f"Revision/{number}",
        )

    def _exited(self, key: Key) -> Callable[[Replica], None]:
        def record(replica: Replica) -> None:
            self.event(
                key, "BackOff", f"restarting: {replica.last_exit}", f"Pod/{replica.pod}", True
            )

        return record

    def _retire(self, key: Key, number: int, replicas: list[Replica]) -> None:
        if not replicas:
            return
        for replica in replicas:
            replica.stopping = True  # out of the rotation now; stopped once its requests end
        self.event(key, "ScalingReplicaSet", f"scaled revision {number} down", f"Revision/{number}")
        task = asyncio.create_task(self._drain_and_stop(replicas))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _drain_and_stop(self, replicas: list[Replica]) -> None:
        deadline = time.monotonic() + self.settings.drain_seconds + 5
        # Polled: in-flight counts change on every request; an Event per replica would cost
        # every request for the rare moment a revision retires.
        while any(r.inflight for r in replicas) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.gather(*(r.stop() for r in replicas))
        self.on_change()

    async def stop(self) -> None:
        """The agent is stopping: every predictor drains and exits (they start again with it)."""
        every = [r for sets in self.sets.values() for rs in sets.values() for r in rs]
        self.sets.clear()
        await asyncio.gather(*(r.stop() for r in every))
        for task in list(self._retiring):
            with contextlib.suppress(Exception):
                await task

    # -- reading ----------------------------------------------------------------------------
    def routes(self, namespace: str | None, name: str) -> tuple[list[Replica], str]:
        keys = [k for k in self.sets if k[1] == name and (namespace is None or k[0] == namespace)]
        if not keys:
            where = f" in namespace {namespace}" if namespace else ""
            return [], f"no deployment named {name!r}{where}"
        if len(keys) > 1:
            spaces = ", ".join(sorted(k[0] for k in keys))
            return [], (
                f"{name!r} is deployed in several namespaces ({spaces}); "
                f"use /ns/<namespace>/models/{name}/..."
            )
        serving = self.serving.get(keys[0])
        if serving is None:
            return [], ""
        return self.sets[keys[0]].get(serving, []), ""

    def replicas(self, key: Key) -> list[Replica]:
        return [r for number in sorted(self.sets.get(key, {})) for r in self.sets[key][number]]

    def view(self, row: DeploymentRow) -> ModelDeployment:
        key = row.key
        revision = self.state.revision(row.namespace, row.name, row.revision)
        model = revision.model if revision else row.model
        version = str(revision.version) if revision else "?"
        sets = self.sets.get(key, {})
        new = [r for r in sets.get(row.revision, []) if not r.stopping]
        live = [r for rs in sets.values() for r in rs if r.routable]
        ready_new = sum(r.routable for r in new)
        serving = row.serving_revision
        unfit = self.unfit.get(key) or row.problem
        if unfit:
            state, reason = DeploymentState.FAILED, unfit
        elif row.paused:
            state, reason = DeploymentState.PAUSED, f"deployment {row.name!r} is paused"
        elif key in self.failures:
            state, reason = DeploymentState.FAILED, self.failures[key]
        elif serving != row.revision:
            state = DeploymentState.PROGRESSING
            reason = f"rolling out revision {row.revision}: {ready_new}/{row.replicas} ready"
        elif ready_new >= row.replicas:
            state, reason = DeploymentState.AVAILABLE, ""
        elif any(r.restarts or r.failure for r in new):
            troubled = next(r for r in new if r.restarts or r.failure)
            state = DeploymentState.DEGRADED
            reason = f"{ready_new}/{row.replicas} ready; {troubled.pod}: {troubled.reason}"
        else:
            state = DeploymentState.PROGRESSING
            reason = f"{ready_new}/{row.replicas} ready"
        return ModelDeployment(
            name=row.name,
            namespace=row.namespace,
            model=model,
            version=version,
            desired=row.replicas,
            ready=len(live),
            updated=len(new),
            available=ready_new if serving == row.revision else len(live),
            state=state,
            reason=reason,
            revision=row.revision,
            created=parse_time(row.created),
            image="python -m serving",
            labels={
                "app.kubernetes.io/managed-by": "fleetdeck",
                "app.kubernetes.io/name": row.name,
                "fleetdeck.io/model": model,
                "fleetdeck.io/model-version": version,
            },
        )

    def pods(self, key: Key) -> list[PodInfo]:
        return [
            PodInfo(
                name=r.pod,
                namespace=key[0],
                phase=r.phase,
                ready=r.routable,
                restarts=r.restarts,
                node="localhost",
                reason=r.reason,
                created=r.created,
                revision=r.revision,
            )
            for r in self.replicas(key)
            if not r.stopping or r.phase == "Running"
        ]

    def history(self, row: DeploymentRow) -> list[RevisionInfo]:
        return [
            RevisionInfo(
                r.number,
                r.change_cause,
                r.model,
                str(r.version),
                ("python -m serving",),
                row.replicas,
                created=parse_time(r.created),
            )
            for r in self.state.revisions(row.namespace, row.name)
        ]
