"""The Kubernetes backend: the official client against a kubeconfig context.

Reads come from the fleet cache (list + watch); mutations go through ``KubernetesActions``;
``can`` asks the API server's SelfSubjectAccessReview (cached). A read-only profile (or
``--readonly``) refuses every mutation before anything is sent.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from console.backends.base import Connection, LogRequest
from console.backends.kubernetes import convert
from console.backends.kubernetes.access import AccessReviewer
from console.backends.kubernetes.actions import KubernetesActions, api_error
from console.backends.kubernetes.cache import FleetCache, Kind
from console.backends.kubernetes.manifests import change_cause, check_name, training_job
from console.backends.kubernetes.selectors import parse_selector
from console.model import (
    ActionResult,
    DeployRequest,
    EventInfo,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
    TrainingJob,
    TrainingRequest,
)
from console.profile import Profile

SYNC_SECONDS = 30.0


class ReadOnly(Exception):
    pass


def api_client_for(profile: Profile, context: str | None = None) -> Any:
    from kubernetes import config

    settings = profile.kubernetes
    assert settings is not None, "a kubernetes profile has [kubernetes] settings"
    return config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
        context=context or settings.context,
    )


class KubernetesBackend:
    name = "kubernetes"

    def __init__(
        self,
        profile: Profile,
        *,
        api_client: Any = None,
        context: str | None = None,
        namespaces: Sequence[str] | None = None,
        read_only: bool = False,
        user: str = "",
    ) -> None:
        settings = profile.kubernetes
        self.profile = profile
        self.read_only = read_only or profile.read_only
        self.api_client = api_client or api_client_for(profile, context)
        self.namespaces = tuple(
            namespaces if namespaces is not None else (settings.namespaces if settings else ())
        )
        self.default_namespace = self.namespaces[0] if self.namespaces else "default"
        self.cache = FleetCache(self.api_client, self.namespaces)
        self.actions = KubernetesActions(self.api_client, profile, user)
        self.access = AccessReviewer(self.api_client)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = SYNC_SECONDS) -> bool:
        """Start the cache; True once it has listed everything."""
        if not self._started:
            self.cache.start()
            self._started = True
        return self.cache.wait_synced(timeout)

    def close(self) -> None:
        if self._started:
            self.cache.stop()
            self._started = False

    # -- reads --------------------------------------------------------------------------------
    def connection(self) -> Connection:
        state = self.cache.connection
        return Connection(state.live, state.since, state.reason or state.last_error or "")

    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        matches = parse_selector(selector)
        replicasets = self.cache.list(Kind.REPLICASETS)
        pods = self.cache.list(Kind.PODS)
        rows = [
            convert.deployment(d, replicasets, convert.selected_by(d, pods))
            for d in self.cache.list(Kind.DEPLOYMENTS)
            if matches((d.get("metadata") or {}).get("labels") or {})
        ]
        return sorted(rows, key=lambda r: (r.namespace, r.name))

    def _deployment_obj(self, namespace: str, name: str) -> Any:
        return self.cache.get(Kind.DEPLOYMENTS, namespace, name)

    def deployment(self, namespace: str, name: str) -> ModelDeployment | None:
        obj = self._deployment_obj(namespace, name)
        if obj is None:
            return None
        pods = convert.selected_by(obj, self.cache.list(Kind.PODS, namespace))
        return convert.deployment(obj, self.cache.list(Kind.REPLICASETS, namespace), pods)

    def history(self, namespace: str, name: str) -> list[RevisionInfo]:
        obj = self._deployment_obj(namespace, name)
        return convert.revisions(obj, self.cache.list(Kind.REPLICASETS, namespace)) if obj else []

    def pods(self, namespace: str, name: str) -> list[PodInfo]:
        obj = self._deployment_obj(namespace, name)
        if obj is None:
            return []
        return [
            convert.pod(p) for p in convert.selected_by(obj, self.cache.list(Kind.PODS, namespace))
        ]

    def events(self, namespace: str, name: str) -> list[EventInfo]:
        """Events of the Deployment, its ReplicaSets and its pods, oldest first."""
        related = {f"Deployment/{name}"} | {f"Pod/{p.name}" for p in self.pods(namespace, name)}
        related |= {
            f"ReplicaSet/{(rs.get('metadata') or {}).get('name')}"
            for rs in self.cache.list(Kind.REPLICASETS, namespace)
            if (rs.get("metadata") or {}).get("name", "").startswith(name + "-")
        }
        events = [convert.event(e) for e in self.cache.list(Kind.EVENTS, namespace)]
        chosen = [e for e in events if e.object in related]
        return sorted(chosen, key=lambda e: e.time.timestamp() if e.time else 0.0)

    def jobs(self) -> list[TrainingJob]:
        pods = self.cache.list(Kind.PODS)
        jobs = [convert.job(j, pods) for j in self.cache.list(Kind.JOBS)]
        return sorted(jobs, key=lambda j: (j.namespace, j.name))

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        return self.cache.subscribe(lambda changes: on_change())

    # -- mutations ----------------------------------------------------------------------------
    def _refuse(self, target: str, dry_run: bool) -> ActionResult | None:
        if not self.read_only:
            return None
        return ActionResult(
            target,
            False,
            f"read-only: profile {self.profile.name!r} "
            "(or --readonly) allows no changes; nothing was sent",
            dry_run,
        )

    def deploy(
        self, request: DeployRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        namespace = request.namespace or self.default_namespace
        refused = self._refuse(f"{namespace}/{request.name}", dry_run)
        return refused or self.actions.deploy(request, namespace, dry_run=dry_run, verify=verify)

    def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.rollout(
            namespace, name, version, dry_run=dry_run, verify=verify
        )

    def rollback(
        self, namespace: str, name: str, to_revision: int = 0, *, dry_run: bool = False
    ) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.rollback(namespace, name, to_revision, dry_run=dry_run)

    def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool = False
    ) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.scale(namespace, name, replicas, dry_run=dry_run)

    def restart(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.restart(namespace, name, dry_run=dry_run)

    def pause(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.pause(namespace, name, dry_run=dry_run)

    def resume(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.resume(namespace, name, dry_run=dry_run)

    def delete(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        refused = self._refuse(f"{namespace}/{name}", dry_run)
        return refused or self.actions.delete(namespace, name, dry_run=dry_run)

    def train(self, request: TrainingRequest, *, dry_run: bool = False) -> list[ActionResult]:
        """One Job, or a sweep: one Job per combination of ``request.grid``."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        namespace = request.namespace or self.default_namespace
        base = check_name(f"train-{request.model}"[:40].rstrip("-"), "job name")
        suffix = uuid.uuid4().hex[:5]
        refused = self._refuse(f"{namespace}/{base}", dry_run)
        if refused:
            return [refused]
        keys = list(request.grid)
        trials = [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(request.grid[k] for k in keys))
        ] or [{}]
        sweep = f"sweep-{request.model}-{suffix}" if request.grid else None
        batch: Any = client.BatchV1Api(self.api_client)
        results = []
        for number, choice in enumerate(trials):
            name = f"{base}-{suffix}" + (f"-{number}" if sweep else "")
            flags = {
                k: v for k, v in choice.items() if k in ("learning_rate", "batch_size", "epochs")
            }
            args = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
            params = {**request.params, **{k: v for k, v in choice.items() if k not in flags}}
            job = training_job(
                self.profile,
                namespace,
                name,
                request.model,
                request.data,
                gpus=request.gpus,
                epochs=request.epochs,
                params=params,
                args=args,
                sweep=sweep,
                trial=number if sweep else None,
                cause=change_cause(f"train {request.model}", self.actions.user),
            )
            try:
                batch.create_namespaced_job(namespace, job, dry_run="All" if dry_run else None)
            except ApiException as exc:
                results.append(ActionResult(f"{namespace}/{name}", False, api_error(exc), dry_run))
                continue
            verb = "would create" if dry_run else "created"
            gpus = job["spec"]["template"]["spec"]["containers"][0]["resources"]
            results.append(
                ActionResult(
                    f"{namespace}/{name}",
                    True,
                    f"{verb} Job/{name}",
                    dry_run,
                    (f"+ Job/{name} {gpus or ''}".rstrip(),),
                )
            )
        return results

    def cancel_job(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        refused = self._refuse(f"{namespace}/{name}", dry_run)
        if refused:
            return refused
        batch: Any = client.BatchV1Api(self.api_client)
        try:
            batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background", dry_run="All" if dry_run else None
            )
        except ApiException as exc:
            return ActionResult(f"{namespace}/{name}", False, api_error(exc), dry_run)
        verb = "would cancel" if dry_run else "cancelled"
        return ActionResult(f"{namespace}/{name}", True, f"{verb} Job/{name}", dry_run)

    # -- streams and permissions --------------------------------------------------------------
    def logs(self, request: LogRequest) -> Iterator[str]:
        """Lines of one pod (or several, each prefixed with its pod), without following."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api_client)
        for pod in request.pods:
            text = core.read_namespaced_pod_log(
                pod,
                request.namespace,
                container=request.container,
                tail_lines=request.tail,
                timestamps=request.timestamps,
                previous=request.previous,
                since_seconds=int(request.since.total_seconds()) if request.since else None,
            )
            prefix = f"[{pod}] " if len(request.pods) > 1 else ""
            for line in text.splitlines():
                yield prefix + line

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return self.access.can(verb, resource, namespace or self.default_namespace)
