"""The Kubernetes backend: the official client against a kubeconfig context.

Reads come from the fleet cache (list + watch); mutations go through ``KubernetesActions``;
``can`` asks the API server's SelfSubjectAccessReview (cached). A read-only profile (or
``--readonly``) refuses every mutation before anything is sent.
"""

from __future__ import annotations

import itertools
import platform
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from urllib3.exceptions import HTTPError

from console import __version__
from console.backends.base import (
    BackendError,
    ConditionInfo,
    Connection,
    LogRequest,
    RouteInfo,
)
from console.backends.kubernetes import autoscale, convert
from console.backends.kubernetes.access import AccessReviewer
from console.backends.kubernetes.actions import KubernetesActions, api_error
from console.backends.kubernetes.cache import ALL_KINDS, FleetCache, Kind
from console.backends.kubernetes.logs import LogError, LogOptions, stream_logs
from console.backends.kubernetes.manifests import (
    MANAGED_BY,
    MODEL_LABEL,
    ManifestError,
    change_cause,
    check_name,
    scoring_job,
    training_job,
)
from console.backends.kubernetes.revisions_memo import RevisionsMemo
from console.core import guard
from console.model import (
    ActionResult,
    AutoscaleRequest,
    AutoscalerInfo,
    DeployRequest,
    EventInfo,
    GpuCapacity,
    JobPhase,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
    ScoringRequest,
    TrainingJob,
    TrainingRequest,
)
from console.names import job_name_base
from console.profile import Profile
from console.selectors import parse_selector

SYNC_SECONDS = 30.0


def _error(exc: Exception) -> str:
    return api_error(exc) if hasattr(exc, "status") else f"cannot reach the API server: {exc}"


def _uid(obj: Any) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def _name(obj: Any) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Any) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _by_owner(objects: Sequence[Any]) -> dict[str, list[Any]]:
    owned: dict[str, list[Any]] = {}
    for obj in objects:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
            owned.setdefault(str(ref.get("uid", "")), []).append(obj)
    return owned


class _PodIndex:
    """Pods by namespace and one selector label, so each Deployment finds its pods in O(its)."""

    def __init__(self, pods: Sequence[Any]) -> None:
        self._pods = pods
        self._by_label: dict[str, dict[tuple[str, str], list[Any]]] = {}

    def selected_by(self, deployment: Any) -> list[Any]:
        match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not match:
            return []
        key, value = next(iter(match.items()))
        index = self._by_label.get(key)
        if index is None:
            index = self._by_label[key] = {}
            for pod in self._pods:
                meta = pod.get("metadata") or {}
                label = (meta.get("labels") or {}).get(key)
                if label is not None:
                    index.setdefault((meta.get("namespace", ""), label), []).append(pod)
        namespace = (deployment.get("metadata") or {}).get("namespace", "")
        return convert.selected_by(deployment, index.get((namespace, value), []))


USER_AGENT = (
    f"fleetdeck/{__version__} (python {platform.python_version()}; {platform.system().lower()}/"
    f"{platform.machine()})"
)
EXTRA_CONNECTIONS = 8  # requests besides watches and a batch's: reviews, logs, one-off reads


def api_client_for(
    profile: Profile,
    context: str | None = None,
    watchers: int = 10,
    parallel: int | None = None,
    request_timeout: float | None = None,
) -> Any:
    """A client for the profile's context, its connection pool big enough for one watch per
    kind × namespace plus a batch's requests in flight (``parallel``, default the profile's
    ``[batch] max_parallel``) and a few more (access reviews, logs): urllib3 otherwise
    discards connections ("Connection pool is full") and opens new ones for every request."""
    from kubernetes import client, config

    settings = profile.kubernetes
    assert settings is not None, "a kubernetes profile has [kubernetes] settings"
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
        context=context or settings.context,
        client_configuration=configuration,
    )
    in_flight = parallel if parallel is not None else profile.batch.max_parallel
    configuration.connection_pool_maxsize = watchers + in_flight + EXTRA_CONNECTIONS
    api = client.ApiClient(configuration)
    # The API server names the field manager of a create, update or patch after the user
    # agent (up to its "/"): with ours, `kubectl get --show-managed-fields` shows "fleetdeck"
    # for our changes instead of the client library's "OpenAPI-Generator", and the API server's
    # audit log names us.
    api.user_agent = USER_AGENT
    if request_timeout:
        _limit_requests(api, request_timeout)
    return api


def _limit_requests(api: Any, seconds: float) -> None:
    """Every request that names no timeout of its own waits at most ``seconds`` to connect and
    as long between bytes (``--request-timeout``). The client has no default of its own, and an
    explicit ``None`` overrides urllib3's pool default, so the REST client's ``request`` is
    wrapped; watches and log streams name their own and keep them."""
    rest = api.rest_client
    send = rest.request

    def request(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = (seconds, seconds)
        return send(*args, **kwargs)

    rest.request = request


def list_deployments(
    profile: Profile, context: str | None, namespace: str | None, timeout: float
) -> list[tuple[str, str, str]]:
    """(namespace, name, model) of fleetdeck's Deployments in ``namespace`` (else the
    profile's namespaces), one request each with ``timeout``: no cache, no watch."""
    from kubernetes import client

    settings = profile.kubernetes
    chosen = [namespace] if namespace else list(settings.namespaces if settings else ())
    api = api_client_for(profile, context, watchers=1)
    apps: Any = client.AppsV1Api(api)
    managed = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    options: dict[str, Any] = {"label_selector": managed, "_request_timeout": timeout}
    found: list[tuple[str, str, str]] = []
    try:
        for each in chosen or [""]:
            listed = (
                apps.list_namespaced_deployment(each, **options)
                if each
                else apps.list_deployment_for_all_namespaces(**options)
            )
            found += [
                (
                    d.metadata.namespace,
                    d.metadata.name,
                    (d.metadata.labels or {}).get(MODEL_LABEL, ""),
                )
                for d in listed.items
            ]
    finally:
        api.close()
    return found


def not_answering_text(since: datetime, why: str) -> str:
    local = since.astimezone().strftime("%H:%M:%S")
    return f"the cluster has not answered since {local} ({why}); nothing was sent"


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
        parallel: int | None = None,
        request_timeout: float | None = None,
    ) -> None:
        settings = profile.kubernetes
        self.profile = profile
        self.read_only = read_only or profile.read_only
        self.namespaces = tuple(
            namespaces if namespaces is not None else (settings.namespaces if settings else ())
        )
        watchers = len(ALL_KINDS) * max(1, len(self.namespaces))
        self.api_client = api_client or api_client_for(
            profile, context, watchers, parallel, request_timeout
        )
        # -A widens what is read, not where a NAME is looked for or created.
        defaults = settings.namespaces if settings and settings.namespaces else self.namespaces
        self.default_namespace = defaults[0] if defaults else "default"
        self.cache = FleetCache(self.api_client, self.namespaces)
        self.actions = KubernetesActions(self.api_client, profile, user)
        self.access = AccessReviewer(self.api_client)
        self._revisions = RevisionsMemo(convert.revisions)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = SYNC_SECONDS) -> bool:
        """Start the cache; True once it has listed everything."""
        if not self._started:
            self.cache.start()
            self._started = True
        return self.cache.wait_synced(timeout)

    def close(self, wait: float = 10.0) -> None:
        """Stop the cache, waiting up to ``wait`` for its threads (daemons: a request stuck on
        a server that never answers cannot hold the process), and close the connections."""
        if self._started:
            self.cache.stop(timeout=wait)
            self._started = False
        self.api_client.close()  # its connection pool

    # -- reads --------------------------------------------------------------------------------
    def connection(self) -> Connection:
        state = self.cache.connection
        return Connection(state.live, state.since, state.reason or state.last_error or "")

    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        matches = parse_selector(selector)
        chosen = [
            d
            for d in self.cache.list(Kind.DEPLOYMENTS)
            if matches((d.get("metadata") or {}).get("labels") or {})
        ]
        # Index once per call: a fleet of thousands must not compare every Deployment with
        # every ReplicaSet and pod.
        owned = _by_owner(self.cache.list(Kind.REPLICASETS))
        pods = _PodIndex(self.cache.list(Kind.PODS))
        rows = [convert.deployment(d, owned.get(_uid(d), []), pods.selected_by(d)) for d in chosen]
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

    def histories(self) -> dict[tuple[str, str], list[RevisionInfo]]:
        """Every Deployment's revisions; an unchanged Deployment's are the list of the last
        call (``RevisionsMemo``)."""
        owned = _by_owner(self.cache.list(Kind.REPLICASETS))
        found = self._revisions.revisions(
            self.cache.list(Kind.DEPLOYMENTS), lambda d: owned.get(_uid(d), ()), _uid
        )
        return {(_namespace(d), _name(d)): revisions for d, revisions in found}

    def warnings(self) -> list[tuple[tuple[str, str], EventInfo]]:
        """Warning events of the Deployments, their ReplicaSets and their pods, each with its
        Deployment; indexed once, as for the table."""
        deployments = self.cache.list(Kind.DEPLOYMENTS)
        by_uid = {_uid(d): (_namespace(d), _name(d)) for d in deployments}
        owner: dict[tuple[str, str, str], tuple[str, str]] = {
            (key[0], "Deployment", key[1]): key for key in by_uid.values()
        }
        rs_owner: dict[str, tuple[str, str]] = {}
        for rs in self.cache.list(Kind.REPLICASETS):
            for ref in (rs.get("metadata") or {}).get("ownerReferences") or ():
                key = by_uid.get(str(ref.get("uid", "")))
                if key is not None:
                    rs_owner[_uid(rs)] = key
                    owner[(key[0], "ReplicaSet", _name(rs))] = key
        for pod in self.cache.list(Kind.PODS):
            for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
                key = rs_owner.get(str(ref.get("uid", "")))
                if key is not None:
                    owner[(key[0], "Pod", _name(pod))] = key
        found = []
        for event in self.cache.list(Kind.EVENTS):
            if event.get("type") != "Warning":
                continue
            involved = event.get("involvedObject") or {}
            key = owner.get(
                (_namespace(event), str(involved.get("kind", "")), str(involved.get("name", "")))
            )
            if key is not None:
                found.append((key, convert.event(event)))
        return found

    def pods(self, namespace: str, name: str) -> list[PodInfo]:
        obj = self._deployment_obj(namespace, name)
        if obj is None:
            return []
        return [
            convert.pod(p) for p in convert.selected_by(obj, self.cache.list(Kind.PODS, namespace))
        ]

    def events(self, namespace: str, name: str) -> list[EventInfo]:
        """Events of the Deployment, its ReplicaSets and their pods, oldest first."""
        obj = self._deployment_obj(namespace, name)
        if obj is None:
            return []
        replicasets = _by_owner(self.cache.list(Kind.REPLICASETS, namespace)).get(_uid(obj), [])
        rs_uids = {_uid(rs) for rs in replicasets}
        pods = [
            p
            for p in self.cache.list(Kind.PODS, namespace)
            if any(
                ref.get("uid") in rs_uids
                for ref in (p.get("metadata") or {}).get("ownerReferences") or ()
            )
        ]
        related = {("Deployment", name)} | {
            (kind, (o.get("metadata") or {}).get("name"))
            for kind, objs in (("ReplicaSet", replicasets), ("Pod", pods))
            for o in objs
        }
        chosen = [
            convert.event(e)
            for e in self.cache.list(Kind.EVENTS, namespace)
            if (
                (e.get("involvedObject") or {}).get("kind"),
                (e.get("involvedObject") or {}).get("name"),
            )
            in related
        ]
        return sorted(chosen, key=lambda e: e.time.timestamp() if e.time else 0.0)

    def conditions(self, namespace: str, name: str) -> list[ConditionInfo]:
        """The Deployment's ``status.conditions`` from the cache; [] when it is not there."""
        obj = self._deployment_obj(namespace, name) or {}
        return [
            ConditionInfo(
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                str(c.get("message", "")),
                str(c.get("lastUpdateTime") or c.get("lastTransitionTime") or ""),
            )
            for c in (obj.get("status") or {}).get("conditions") or ()
        ]

    def route(self, namespace: str, name: str) -> RouteInfo | None:
        """The deployment's Ingress or HTTPRoute (the profile's route kind), read now."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        kind = self.profile.route.kind
        try:
            if kind == "Ingress":
                ingress: Any = client.NetworkingV1Api(self.api_client).read_namespaced_ingress(
                    name, namespace
                )
                rules = ingress.spec.rules or []
                return RouteInfo(
                    kind,
                    name,
                    tuple(r.host for r in rules if r.host),
                    tuple(p.path for r in rules if r.http for p in r.http.paths or [] if p.path),
                )
            if kind == "HTTPRoute":
                found: Any = client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                    "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
                )
                spec = found.get("spec") or {}
                matches = [m for r in spec.get("rules") or [] for m in r.get("matches") or []]
                return RouteInfo(
                    kind,
                    name,
                    tuple(spec.get("hostnames") or ()),
                    tuple(str((m.get("path") or {}).get("value", "")) for m in matches),
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise BackendError(f"route of {namespace}/{name}: {api_error(exc)}") from None
        except HTTPError as exc:
            raise BackendError(f"route of {namespace}/{name}: {_error(exc)}") from None
        return None

    def reviewed_user(self) -> str | None:
        """Who the API server says we are (SelfSubjectReview); None when it cannot say."""
        from console.backends.kubernetes.access import reviewed_username

        return reviewed_username(self.api_client)

    def act_as(self, user: str) -> None:
        """Name ``user`` in the change-causes this backend writes from now on."""
        self.actions.user = user

    def job_pods(self, namespace: str, name: str) -> list[str]:
        return sorted(
            (p.get("metadata") or {}).get("name", "")
            for p in self.cache.list(Kind.PODS, namespace)
            if ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == name
        )

    def gpu_capacity(self) -> GpuCapacity:
        """The nodes' allocatable GPUs (one list of the nodes, with the request timeout) and
        those the running jobs of the watched namespaces hold."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            nodes = client.CoreV1Api(self.api_client).list_node().items
        except ApiException as exc:
            raise BackendError(f"cannot list the nodes: {api_error(exc)}") from None
        except HTTPError as exc:
            raise BackendError(f"cannot list the nodes: {_error(exc)}") from None
        per_node = [
            convert.gpus_of(node.status.allocatable if node.status else None) for node in nodes
        ]
        held = sum(job.gpus for job in self.jobs() if job.phase is JobPhase.RUNNING)
        return GpuCapacity(sum(per_node), sum(1 for n in per_node if n), held)

    def jobs(self) -> list[TrainingJob]:
        pods = self.cache.list(Kind.PODS)
        jobs = [convert.job(j, pods) for j in self.cache.list(Kind.JOBS)]
        return sorted(jobs, key=lambda j: (j.namespace, j.name))

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        return self.cache.subscribe(lambda changes: on_change())

    # -- mutations ----------------------------------------------------------------------------
    def _refuse(self, target: str, dry_run: bool) -> ActionResult | None:
        if self.read_only:
            # The last line: front-ends refuse first (console.core.guard), with the same text.
            text = guard.read_only_refusal(self.profile.name).text
            return ActionResult(target, False, text, dry_run)
        unanswered = self.cache.unanswered()
        if unanswered is not None:
            # At once, instead of each request waiting out its timeouts and retries.
            since, why = unanswered
            text = not_answering_text(since, why)
            return ActionResult(target, False, text, dry_run, unanswered=True)
        return None

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
        base = check_name(job_name_base("train", request.model), "job name")
        suffix = uuid.uuid4().hex[:5]
        refused = self._refuse(f"{namespace}/{base}", dry_run)
        if refused:
            return [refused]
        keys = list(request.grid)
        trials = [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(request.grid[k] for k in keys))
        ] or [{}]
        sweep = f"{job_name_base('sweep', request.model)}-{suffix}" if request.grid else None
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
            except (ApiException, HTTPError) as exc:
                results.append(ActionResult(f"{namespace}/{name}", False, _error(exc), dry_run))
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

    def score(
        self, request: ScoringRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        """A scoring Job (``python -m training.score``, labelled ``fleetdeck.io/kind=score``)
        for a version the store has (``verify``); a dry run has the API server check it and
        creates nothing."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        namespace = request.namespace or self.default_namespace
        name = f"{job_name_base('score', request.model)}-{uuid.uuid4().hex[:5]}"
        target = f"{namespace}/{name}"
        refused = self._refuse(target, dry_run)
        if refused:
            return refused
        if verify and (why := self.actions._verify(request.model, request.version)):
            return ActionResult(target, False, why, dry_run)
        try:
            job = scoring_job(
                self.profile,
                namespace,
                name,
                request.model,
                request.version,
                request.input,
                batch_size=request.batch_size,
                cause=change_cause(f"score {request.model} v{request.version}", self.actions.user),
            )
        except ManifestError as exc:
            return ActionResult(target, False, str(exc), dry_run)
        batch: Any = client.BatchV1Api(self.api_client)
        try:
            batch.create_namespaced_job(namespace, job, dry_run="All" if dry_run else None)
        except (ApiException, HTTPError) as exc:
            return ActionResult(target, False, _error(exc), dry_run)
        verb = "would create" if dry_run else "created"
        flags = f"--model {request.model} --version {request.version} --input {request.input}"
        if request.batch_size is not None:
            flags += f" --batch-size {request.batch_size}"
        return ActionResult(
            target,
            True,
            f"{verb} scoring Job/{name}",
            dry_run,
            (f"+ Job/{name}: python -m training.score {flags}",),
        )

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
        except (ApiException, HTTPError) as exc:
            return ActionResult(f"{namespace}/{name}", False, _error(exc), dry_run)
        verb = "would cancel" if dry_run else "cancelled"
        return ActionResult(f"{namespace}/{name}", True, f"{verb} Job/{name}", dry_run)

    # -- autoscaling (the Autoscaling capability): an HPA or a KEDA ScaledObject, per profile -
    def autoscale(
        self, namespace: str, request: AutoscaleRequest, *, dry_run: bool = False
    ) -> ActionResult:
        refused = self._refuse(f"{namespace}/{request.name}", dry_run)
        return refused or autoscale.autoscale(
            self.api_client,
            namespace,
            request,
            user=self.actions.user,
            settings=self.profile.autoscaling,
            metrics=self.profile.metrics,
            dry_run=dry_run,
        )

    def autoscaler(self, namespace: str, name: str) -> AutoscalerInfo | None:
        engine = self.profile.autoscaling.engine
        return autoscale.read_autoscaler(self.api_client, namespace, name, engine)

    # -- streams and permissions --------------------------------------------------------------
    def logs(self, request: LogRequest) -> Iterator[str]:
        """One pod's lines (or several pods', merged and prefixed); follows when asked."""
        from kubernetes import client

        options = LogOptions(
            container=request.container,
            tail=request.tail,
            timestamps=request.timestamps,
            since_seconds=max(1, int(request.since.total_seconds())) if request.since else None,
            previous=request.previous,
            follow=request.follow,
        )
        containers = self._containers(request) if request.all_containers else None
        try:
            yield from stream_logs(
                client.CoreV1Api(self.api_client),
                request.namespace,
                request.pods,
                options,
                request.stop,
                containers=containers,
            )
        except LogError as exc:
            raise BackendError(str(exc)) from None

    def _containers(self, request: LogRequest) -> dict[str, list[str]]:
        """Each pod's containers (from the cache; a pod not there yet: its default one)."""
        found: dict[str, list[str]] = {}
        for pod in request.pods:
            obj = self.cache.get(Kind.PODS, request.namespace, pod) or {}
            spec = obj.get("spec") or {}
            found[pod] = [str(c.get("name")) for c in spec.get("containers") or () if c.get("name")]
        return found

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return self.access.can(verb, resource, namespace or self.default_namespace)
