"""The local backend: the console's side of the local runtime, the agent's only client.

Reads come from a cache of the agent's snapshot, kept current by a long poll (the agent
answers as soon as its state changes); subscribers are called once per new snapshot, so a
burst of changes is one call. Mutations go to the agent's private API and the cache is
refreshed before they return, so a command sees its own change. Kubernetes-only concepts are
refused with a message that says so. Autoscaling is the agent's own
(``console.local.autoscaler``: the HPA's arithmetic on req/s per replica, measured at the
gateway). The agent is reached through ``console.local.client`` (its Unix socket, checked
before anything is sent).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.backends.base import (
    BackendError,
    ConditionInfo,
    Connection,
    LogRequest,
    RouteInfo,
)
from console.core import guard
from console.local.client import AgentClient, AgentNotRunning, AgentRefused, AgentUnavailable
from console.local.launch import ensure_agent, paths_for, running_agent
from console.local.wire import from_json
from console.model import (
    ActionResult,
    AutoscaleRequest,
    AutoscalerInfo,
    DeploymentState,
    DeployRequest,
    EventInfo,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
    ScoringRequest,
    TrainingJob,
    TrainingRequest,
)
from console.profile import Profile
from console.selectors import parse_selector

POLL_WAIT = 25.0
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class _View:
    """One snapshot of the agent, parsed once when it arrives (reads are then lookups)."""

    deployments: dict[tuple[str, str], ModelDeployment] = field(default_factory=dict)
    revisions: dict[str, list[RevisionInfo]] = field(default_factory=dict)
    pods: dict[str, list[PodInfo]] = field(default_factory=dict)
    events: dict[str, list[EventInfo]] = field(default_factory=dict)
    endpoints: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    jobs: list[TrainingJob] = field(default_factory=list)
    job_pods: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, snapshot: dict[str, Any]) -> _View:
        def each(part: str, kind: Any) -> dict[str, list[Any]]:
            return {k: [from_json(kind, v) for v in vs] for k, vs in snapshot[part].items()}

        rows = [from_json(ModelDeployment, d) for d in snapshot["deployments"]]
        return cls(
            deployments={r.key: r for r in rows},
            revisions=each("revisions", RevisionInfo),
            pods=each("pods", PodInfo),
            events=each("events", EventInfo),
            endpoints={
                k: [(str(pod), str(url)) for pod, url in v]
                for k, v in snapshot["endpoints"].items()
            },
            jobs=sorted(
                (from_json(TrainingJob, j) for j in snapshot["jobs"]),
                key=lambda j: (j.namespace, j.name),
            ),
            job_pods={k: [str(p) for p in v] for k, v in snapshot["job_pods"].items()},
        )


class LocalError(BackendError):
    """What the agent refused (no such pod's logs, a bad argument) or an answer that makes no
    sense (the agent gone, not JSON, no result); the message says why."""


def running_deployments(profile: Profile, timeout: float) -> list[tuple[str, str, str]]:
    """(namespace, name, model) of the running agent's deployments; [] when it is not running
    (it is not started: shell completion asks this at each TAB)."""
    paths = paths_for(profile)
    agent = running_agent(paths)
    if agent is None:
        return []
    snapshot = AgentClient(paths, int(agent["pid"])).get("snapshot", {"wait": 0}, timeout=timeout)
    if not isinstance(snapshot, dict):
        return []
    rows = [from_json(ModelDeployment, d) for d in snapshot.get("deployments") or []]
    return [(r.namespace, r.name, r.model) for r in rows]


class LocalBackend:
    name = "local"

    def __init__(
        self,
        profile: Profile,
        *,
        namespaces: Sequence[str] | None = None,
        read_only: bool = False,
        user: str = "",
    ) -> None:
        self.profile = profile
        self.read_only = read_only or profile.read_only
        self.user = user  # "": the agent records its peer's user (only its owner reaches it)
        self.namespaces = tuple(namespaces or ())  # (): every namespace
        self.default_namespace = self.namespaces[0] if self.namespaces else "default"
        self._paths = paths_for(profile)
        self._agent = ensure_agent(profile)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []
        self._connection = Connection(True, datetime.now(UTC))
        self._view = _View()
        self._generation = -1
        self._closed = threading.Event()
        self._store(self._get_snapshot(wait=0))
        self._watcher = threading.Thread(target=self._watch, name="local-agent-watch", daemon=True)
        self._watcher.start()

    # -- the agent's API --------------------------------------------------------------------
    def _client(self) -> AgentClient:
        return AgentClient(self._paths, int(self._agent["pid"]))

    def _get_snapshot(self, wait: float) -> dict[str, Any]:
        query: dict[str, object] = {"wait": wait}
        if self._generation >= 0:
            query["after"] = self._generation
        snapshot = self._client().get("snapshot", query, timeout=wait + 10)
        if not isinstance(snapshot, dict):
            raise AgentUnavailable(f"the agent's snapshot is not a JSON object: {snapshot!r:.200}")
        return snapshot

    def _post(self, verb: str, arguments: dict[str, Any]) -> Any:
        try:
            try:
                answer = self._client().post(f"actions/{verb}", arguments)
            except AgentNotRunning:  # stopped (nothing was sent): start it and send it there
                self._agent = ensure_agent(self.profile)
                answer = self._client().post(f"actions/{verb}", arguments)
        except AgentRefused as exc:
            raise LocalError(f"the agent refused {verb}: {exc.status} {exc.message}") from None
        except AgentUnavailable as exc:
            raise LocalError(f"{verb}: {exc}") from None
        if not isinstance(answer, dict) or "result" not in answer:
            raise LocalError(f"the agent's answer to {verb} has no result: {answer!r:.200}")
        self._refresh()
        return answer["result"]

    def _store(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            changed = snapshot.get("generation") != self._generation
            self._view = _View.parse(snapshot)
            self._generation = int(snapshot.get("generation", -1))
            subscribers = list(self._subscribers)
        if changed:
            for call in subscribers:
                call()

    def _refresh(self) -> None:
        with contextlib.suppress(AgentUnavailable, AgentRefused):
            self._generation = -1
            self._store(self._get_snapshot(wait=0))

    def _watch(self) -> None:
        failures = 0
        while not self._closed.is_set():
            try:
                snapshot = self._get_snapshot(wait=POLL_WAIT)
            except (AgentUnavailable, AgentRefused) as exc:
                if self._closed.is_set():
                    return
                if self._connection.live:
                    self._connection = Connection(
                        False, datetime.now(UTC), f"reconnecting to the local agent: {exc}"
                    )
                    for call in list(self._subscribers):
                        call()
                self._closed.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                with contextlib.suppress(AgentUnavailable):
                    found = running_agent(self._paths)  # restarted: a new pid on the socket
                    if found is not None:
                        self._agent = found
                        self._generation = -1
                continue
            failures = 0
            if not self._connection.live:
                self._connection = Connection(True, datetime.now(UTC))
                self._generation = -1
            self._store(snapshot)

    # -- reading ----------------------------------------------------------------------------
    def _visible(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    def connection(self) -> Connection:
        return self._connection

    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        matches = parse_selector(selector)
        rows = self._view.deployments.values()
        return [r for r in rows if self._visible(r.namespace) and matches(dict(r.labels))]

    def deployment(self, namespace: str, name: str) -> ModelDeployment | None:
        return self._view.deployments.get((namespace, name))

    def history(self, namespace: str, name: str) -> list[RevisionInfo]:
        return list(self._view.revisions.get(f"{namespace}/{name}", []))

    def histories(self) -> dict[tuple[str, str], list[RevisionInfo]]:
        return {
            key: list(self._view.revisions.get(f"{key[0]}/{key[1]}", []))
            for key in self._view.deployments
            if self._visible(key[0])
        }

    def warnings(self) -> list[tuple[tuple[str, str], EventInfo]]:
        return [
            (key, event)
            for key in self._view.deployments
            if self._visible(key[0])
            for event in self._view.events.get(f"{key[0]}/{key[1]}", [])
            if event.kind == "Warning"
        ]

    def pods(self, namespace: str, name: str) -> list[PodInfo]:
        return list(self._view.pods.get(f"{namespace}/{name}", []))

    def events(self, namespace: str, name: str) -> list[EventInfo]:
        return list(self._view.events.get(f"{namespace}/{name}", []))

    def conditions(self, namespace: str, name: str) -> list[ConditionInfo]:
        """Available and Progressing as a Deployment's, from the agent's state."""
        row = self.deployment(namespace, name)
        return _conditions(row) if row is not None else []

    def jobs(self) -> list[TrainingJob]:
        return [j for j in self._view.jobs if self._visible(j.namespace)]

    def job_pods(self, namespace: str, name: str) -> list[str]:
        return list(self._view.job_pods.get(f"{namespace}/{name}", []))

    def endpoints(self, namespace: str, name: str) -> list[tuple[str, str]]:
        """(pod, predictor base URL) of every running replica, e.g. to scrape ``/metrics``."""
        return list(self._view.endpoints.get(f"{namespace}/{name}", []))

    def route(self, namespace: str, name: str) -> RouteInfo | None:
        """The gateway's path of the deployment (None when there is no such deployment)."""
        if self.deployment(namespace, name) is None:
            return None
        paths = (f"/models/{name}/", f"/ns/{namespace}/models/{name}/")
        return RouteInfo("gateway", name, (self.gateway_url(),), paths)

    def gateway_url(self) -> str:
        return str(self._agent["gateway_url"])

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(on_change)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(on_change)

        return unsubscribe

    # -- mutations --------------------------------------------------------------------------
    def _refuse(self, target: str, dry_run: bool) -> ActionResult | None:
        if not self.read_only:
            return None
        # The last line: front-ends refuse first (console.core.guard), with the same text.
        return ActionResult(target, False, guard.read_only_refusal(self.profile.name).text, dry_run)

    def _result(self, answer: Any) -> ActionResult:
        return from_json(ActionResult, answer)

    def _act(self, verb: str, target: str, dry_run: bool, **arguments: Any) -> ActionResult:
        refused = self._refuse(target, dry_run)
        if refused is not None:
            return refused
        return self._result(self._post(verb, {"dry_run": dry_run, **arguments}))

    def deploy(
        self, request: DeployRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        namespace = request.namespace or self.default_namespace
        target = f"{namespace}/{request.name}"
        route = self.profile.route
        if route.host or route.ingress_class or route.gateway:
            return ActionResult(
                target,
                False,
                f"profile {self.profile.name!r} sets [route] host/ingress_class/gateway: the "
                "local runtime has one gateway and no Ingress or HTTPRoute; remove them",
                dry_run,
            )
        return self._act(
            "deploy",
            target,
            dry_run,
            namespace=namespace,
            name=request.name,
            model=request.model,
            version=request.version,
            replicas=request.replicas or self.profile.predictor.replicas,
            gpus=request.gpus,
            verify=verify,
            user=self.user,
        )

    def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        return self._act(
            "rollout",
            f"{namespace}/{name}",
            dry_run,
            namespace=namespace,
            name=name,
            version=version,
            verify=verify,
            user=self.user,
        )

    def rollback(
        self, namespace: str, name: str, to_revision: int = 0, *, dry_run: bool = False
    ) -> ActionResult:
        return self._act(
            "rollback",
            f"{namespace}/{name}",
            dry_run,
            namespace=namespace,
            name=name,
            to_revision=to_revision,
            user=self.user,
        )

    def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool = False
    ) -> ActionResult:
        return self._act(
            "scale",
            f"{namespace}/{name}",
            dry_run,
            namespace=namespace,
            name=name,
            replicas=replicas,
        )

    def autoscale(
        self, namespace: str, request: AutoscaleRequest, *, dry_run: bool = False
    ) -> ActionResult:
        """The deployment's autoscaler in the agent: created, or updated (``--cpu`` is refused
        there: local predictors have no CPU request)."""
        return self._act(
            "autoscale",
            f"{namespace}/{request.name}",
            dry_run,
            namespace=namespace,
            name=request.name,
            min_replicas=request.min_replicas,
            max_replicas=request.max_replicas,
            cpu_percent=request.cpu_percent,
            rps_per_pod=request.rps_per_pod,
            scale_down_seconds=request.scale_down_seconds,
            user=self.user,
        )

    def autoscaler(self, namespace: str, name: str) -> AutoscalerInfo | None:
        """Asked of the agent (blocking): its settings, what the last evaluation found, and
        its decisions, newest first."""
        try:
            answer = self._client().get("autoscaler", {"namespace": namespace, "name": name})
        except AgentRefused as exc:
            raise LocalError(f"the agent refused to show the autoscaler: {exc.message}") from None
        except AgentUnavailable as exc:
            raise LocalError(f"autoscaler: {exc}") from None
        if not isinstance(answer, dict) or "autoscaler" not in answer:
            raise LocalError(f"the agent's autoscaler answer makes no sense: {answer!r:.200}")
        found = answer["autoscaler"]
        return None if found is None else from_json(AutoscalerInfo, found)

    def restart(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._act(
            "restart",
            f"{namespace}/{name}",
            dry_run,
            namespace=namespace,
            name=name,
            user=self.user,
        )

    def pause(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._act("pause", f"{namespace}/{name}", dry_run, namespace=namespace, name=name)

    def resume(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._act("resume", f"{namespace}/{name}", dry_run, namespace=namespace, name=name)

    def delete(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._act("delete", f"{namespace}/{name}", dry_run, namespace=namespace, name=name)

    def train(self, request: TrainingRequest, *, dry_run: bool = False) -> list[ActionResult]:
        namespace = request.namespace or self.default_namespace
        target = f"{namespace}/train-{request.model}"
        refused = self._refuse(target, dry_run)
        if refused is not None:
            return [refused]
        training = self.profile.training
        if training.node_selector or training.tolerations:
            return [
                ActionResult(
                    target,
                    False,
                    f"profile {self.profile.name!r} sets [training] node_selector/tolerations: "
                    "Kubernetes scheduling, which the local runtime (this machine) cannot "
                    "apply; remove them or use a Kubernetes profile",
                    dry_run,
                )
            ]
        answer = self._post(
            "train",
            {
                "namespace": namespace,
                "model": request.model,
                "data": _absolute(request.data),
                "gpus": request.gpus if request.gpus is not None else training.gpus,
                "epochs": request.epochs,
                "params": dict(request.params),
                "grid": {k: list(v) for k, v in request.grid.items()},
                "dry_run": dry_run,
            },
        )
        return [self._result(a) for a in answer]

    def score(
        self, request: ScoringRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        """A scoring job in the agent's job runner: ``python -m training.score`` on this
        machine, its log a job's log, cancelled like training."""
        namespace = request.namespace or self.default_namespace
        return self._act(
            "score",
            f"{namespace}/score-{request.model}",
            dry_run,
            namespace=namespace,
            model=request.model,
            version=request.version,
            inputs=_absolute(request.input),
            batch_size=request.batch_size,
            verify=verify,
        )

    def cancel_job(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._act(
            "cancel_job", f"{namespace}/{name}", dry_run, namespace=namespace, name=name
        )

    # -- streams and permissions ------------------------------------------------------------
    def logs(self, request: LogRequest) -> Iterator[str]:
        """One pod's lines, or several merged with a ``[pod]`` prefix; follows when asked."""
        if request.container not in (None, "predictor", "training", "score"):
            raise LocalError(
                f"container {request.container!r}: local pods have one process each "
                "(predictor, training or score); leave out -c"
            )
        query: list[tuple[str, Any]] = [("namespace", request.namespace)]
        query += [("pod", pod) for pod in request.pods]
        query += [("follow", int(request.follow)), ("timestamps", int(request.timestamps))]
        query += [("previous", int(request.previous))]
        if request.tail is not None:
            query.append(("tail", request.tail))
        if request.since is not None:
            query.append(("since", request.since.total_seconds()))
        try:
            response = self._client().stream("logs", query)
        except AgentRefused as exc:
            raise LocalError(exc.message) from None
        except AgentUnavailable as exc:
            raise LocalError(f"logs: {exc}") from None
        lines: queue.Queue[str | None] = queue.Queue(maxsize=10_000)

        def pump() -> None:
            # Closing the response (stop, or the reader went away) ends this loop with an error.
            with contextlib.suppress(
                OSError, ValueError, AttributeError, http.client.HTTPException
            ):
                for raw in response:
                    lines.put(raw.decode("utf-8", errors="replace").rstrip("\n"))
            lines.put(None)

        reader = threading.Thread(target=pump, name="local-logs", daemon=True)
        reader.start()
        try:
            while True:
                if request.stop is not None and request.stop.is_set():
                    return
                try:
                    line = lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    return
                yield line
        finally:
            _wake_reader(response)
            response.close()

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """Everything on this machine is the user's own; only read-only forbids."""
        return not self.read_only

    def close(self) -> None:
        self._closed.set()


def _absolute(location: str) -> str:
    """A local path as the agent (whose working folder is not the CLI's) can open it."""
    if "://" in location:
        return location
    return str(Path(location).expanduser().resolve())


def _wake_reader(response: http.client.HTTPResponse) -> None:
    """Shut the stream's socket down so a thread blocked reading it returns: closing the
    response alone waits for that read (it holds the reader's lock), which on a quiet followed
    log never ends — the deck then hung on quit after showing a log. A stream that already
    ended has no socket left (AttributeError): nothing to wake."""
    with (
        contextlib.suppress(OSError, ValueError, AttributeError),
        socket.socket(fileno=os.dup(response.fileno())) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)


def _conditions(row: ModelDeployment) -> list[ConditionInfo]:
    """The conditions Kubernetes' deployment controller would set for this state, with its
    reasons and messages (the agent keeps no transition times)."""
    # Minimum availability as Kubernetes' default rolling update has it: maxUnavailable 25 %.
    if row.available >= row.desired - row.desired // 4:
        available = ConditionInfo(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
    else:
        available = ConditionInfo(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    revision = f"revision {row.revision}" if row.revision is not None else "the new revision"
    if row.state is DeploymentState.PAUSED:
        progressing = ConditionInfo(
            "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"
        )
    elif row.state is DeploymentState.FAILED:
        progressing = ConditionInfo(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            row.reason or f"{revision} has timed out progressing.",
        )
    elif row.state is DeploymentState.PROGRESSING:
        progressing = ConditionInfo(
            "Progressing", "True", "ReplicaSetUpdated", row.reason or f"{revision} is progressing."
        )
    else:
        progressing = ConditionInfo(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f"{revision} has successfully progressed.",
        )
    return [available, progressing]
