"""Mutations on the cluster: deploy, rollout, rollback, scale, restart, pause, resume, delete.

Each one reads the object fresh (as kubectl does before an undo), sends one request with
``dryRun=All`` when asked, and answers an ``ActionResult`` whose ``changes`` say what changed (or
would change): the server's own answer diffed against the object before. API errors become a
plain message (403 says who may not do what), never a traceback. A deploy that fails half-way
deletes what it had created, so nothing is left half done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from console.backends.base import error_line
from console.backends.kubernetes.manifests import (
    CHANGE_CAUSE,
    CHANGED_AT,
    MODEL_LABEL,
    MODEL_URI,
    VERSION_LABEL,
    change_cause,
    changed_now,
    model_uri,
    predictor_objects,
)
from console.backends.kubernetes.rollout import RollbackError, plan_rollback
from console.model import ActionResult, DeployRequest
from console.profile import Profile
from serving.filesystems import StoreError
from serving.store import ModelStore

STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_IGNORED_IN_DIFF = (
    "metadata.managedFields",
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.uid",
    "metadata.creationTimestamp",
    "status",
)
MAX_CHANGES = 30
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
DELETED_KINDS = (
    "Deployment",
    "Service",
    "Ingress",
    "HTTPRoute",
    "HorizontalPodAutoscaler",
    "ScaledObject",  # KEDA's, when the profile's autoscaling engine is "keda"
)
# kind -> (the KubernetesActions attribute holding its API, the noun in the client's methods)
OBJECT_APIS = {
    "Deployment": ("apps", "deployment"),
    "Service": ("core", "service"),
    "Ingress": ("networking", "ingress"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontal_pod_autoscaler"),
}
HTTPROUTE = ("gateway.networking.k8s.io", "v1")
# Custom resources: kind -> (group, version, plural)
CUSTOM_KINDS = {
    "HTTPRoute": (*HTTPROUTE, "httproutes"),
    "ScaledObject": ("keda.sh", "v1alpha1", "scaledobjects"),
}


def api_error(exc: Any) -> str:
    """The API server's own message, with its status, from an ApiException."""
    return error_line(exc)


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Changed leaves between two API objects, as ``path: old -> new`` lines."""
    if any(path == p or path.startswith(p + ".") for p in _IGNORED_IN_DIFF):
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after), key=str):
            lines += diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return lines
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        lines = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            lines += diff(old, new, f"{path}[{index}]")
        return lines
    if before != after:
        return [f"{path}: {_short(before)} -> {_short(after)}"]
    return []


def _error_text(exc: BaseException) -> str:
    return api_error(exc) if hasattr(exc, "status") else f"{type(exc).__name__}: {exc}"


def _short(value: Any) -> str:
    text = "(none)" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


class KubernetesActions:
    def __init__(self, api_client: Any, profile: Profile, user: str) -> None:
        from kubernetes import client

        self.profile = profile
        self.user = user
        self._client = api_client
        # Any: the client's hints do not model _preload_content=False (raw JSON answers).
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.networking: Any = client.NetworkingV1Api(api_client)
        self.autoscaling: Any = client.AutoscalingV2Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self._verified: dict[tuple[str, int], str | None] = {}

    # -- helpers ------------------------------------------------------------------------------
    def _read(self, namespace: str, name: str) -> dict[str, Any]:
        answer = self.apps.read_namespaced_deployment(name, namespace, _preload_content=False)
        return dict(json.loads(answer.data))

    def _patch(self, namespace: str, name: str, body: Any, dry_run: bool) -> dict[str, Any]:
        answer = self.apps.patch_namespaced_deployment(
            name,
            namespace,
            body=body,
            dry_run="All" if dry_run else None,
            _content_type=JSON_PATCH if isinstance(body, list) else STRATEGIC,
            _preload_content=False,
        )
        return dict(json.loads(answer.data))

    def _guarded(
        self, target: str, dry_run: bool, action: Callable[[], ActionResult]
    ) -> ActionResult:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return action()
        except ApiException as exc:
            return ActionResult(target, False, api_error(exc), dry_run)
        except HTTPError as exc:
            message = f"cannot reach the API server: {exc}"
            return ActionResult(target, False, message, dry_run, unanswered=True)

    def _change(
        self,
        namespace: str,
        name: str,
        dry_run: bool,
        plan: Callable[[dict[str, Any]], tuple[Any, str, str] | ActionResult],
    ) -> ActionResult:
        """Read the Deployment once, let ``plan`` turn it into (patch, done, would-do) or a
        refusal, send the patch and diff the server's answer against what was read. Field sets
        (replicas, paused, a version) win over concurrent writers, as kubectl's do; a rollback
        is guarded by its own JSON-patch test of the template it planned from."""
        target = f"{namespace}/{name}"

        def act() -> ActionResult:
            before = self._read(namespace, name)
            planned = plan(before)
            if isinstance(planned, ActionResult):
                return planned
            body, done, would = planned
            after = self._patch(namespace, name, body, dry_run)
            changes = tuple(diff(before, after)[:MAX_CHANGES])
            if not changes:
                return ActionResult(target, True, f"{name}: nothing to change", dry_run)
            return ActionResult(target, True, would if dry_run else done, dry_run, changes)

        return self._guarded(target, dry_run, act)

    def _verify(self, model: str, version: int) -> str | None:
        """None when the version is in the profile's store, else why not (asked once per
        version: a rollout of a hundred deployments reads the store once)."""
        key = (model, version)
        if key not in self._verified:
            try:
                ModelStore(self.profile.store.root).manifest(model, version)
                self._verified[key] = None
            except StoreError as exc:
                self._verified[key] = (
                    f"{exc} (--no-verify skips this check for a store the bastion cannot reach)"
                )
        return self._verified[key]

    # -- deploy and rollout -------------------------------------------------------------------
    def deploy(
        self, request: DeployRequest, namespace: str, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        target = f"{namespace}/{request.name}"
        if verify and (why := self._verify(request.model, request.version)):
            return ActionResult(target, False, why, dry_run)
        cause = change_cause(f"deploy {request.model} v{request.version}", self.user)
        objects = predictor_objects(
            self.profile,
            namespace,
            request.name,
            request.model,
            request.version,
            replicas=request.replicas,
            gpus=request.gpus,
            cause=cause,
        )
        created: list[dict[str, Any]] = []

        def create_all() -> ActionResult:
            for obj in objects:
                self._create_object(obj, namespace, dry_run)
                created.append(obj)
            kinds = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
            verb = "would create" if dry_run else "created"
            return ActionResult(
                target,
                True,
                f"{verb} {kinds}",
                dry_run,
                tuple(f"+ {o['kind']}/{o['metadata']['name']}" for o in objects),
            )

        result = self._guarded(target, dry_run, create_all)
        if not result.ok and not dry_run and created:
            kept = []
            for obj in reversed(created):  # leave nothing half done
                label = f"{obj['kind']}/{obj['metadata']['name']}"
                try:
                    self._delete_object(obj["kind"], namespace, obj["metadata"]["name"])
                except Exception as exc:
                    kept.append(f"{label} ({_error_text(exc)})")
            undone = (
                "undone: nothing was kept"
                if not kept
                else "could not undo, delete by hand: " + ", ".join(kept)
            )
            result = ActionResult(target, False, f"{result.message}; {undone}", dry_run)
        if not result.ok and "already exists" in result.message:
            result = ActionResult(
                target,
                False,
                f"{request.name} already exists in {namespace}; "
                "use `fleetdeck rollout` to change its version",
                dry_run,
            )
        return result

    def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        target = f"{namespace}/{name}"

        def plan(current: dict[str, Any]) -> tuple[Any, str, str] | ActionResult:
            labels = current["spec"]["template"]["metadata"].get("labels") or {}
            model = labels.get(MODEL_LABEL)
            if not model:
                return ActionResult(
                    target,
                    False,
                    f"{name} has no {MODEL_LABEL} label: not a fleetdeck predictor",
                    dry_run,
                )
            if verify and (refusal := self._verify(model, version)):
                return ActionResult(target, False, refusal, dry_run)
            uri = model_uri(self.profile, model, version)
            cause = change_cause(f"rollout {model} v{version}", self.user)
            container = current["spec"]["template"]["spec"]["containers"][0]["name"]
            env = [{"name": "FLEETDECK_MODEL_URI", "value": uri}]
            annotations = {MODEL_URI: uri}
            if labels.get(VERSION_LABEL) != str(version):
                # Only a change is stamped: the controller would copy a no-op's stamp onto the
                # current ReplicaSet, re-dating a revision nobody changed.
                annotations |= {CHANGE_CAUSE: cause, CHANGED_AT: changed_now()}
            body = {
                "metadata": {
                    "labels": {VERSION_LABEL: str(version)},
                    "annotations": annotations,
                },
                "spec": {
                    "template": {
                        "metadata": {
                            "labels": {VERSION_LABEL: str(version)},
                            "annotations": {MODEL_URI: uri},
                        },
                        "spec": {"containers": [{"name": container, "env": env}]},
                    }
                },
            }
            what = f"{name} out to {model} version {version}"
            return body, f"rolled {what}", f"would roll {what}"

        return self._change(namespace, name, dry_run, plan)

    def rollback(
        self, namespace: str, name: str, to_revision: int = 0, *, dry_run: bool = False
    ) -> ActionResult:
        target = f"{namespace}/{name}"

        def plan(deployment: dict[str, Any]) -> tuple[Any, str, str] | ActionResult:
            replicasets = json.loads(
                self.apps.list_namespaced_replica_set(namespace, _preload_content=False).data
            )["items"]
            try:
                rollback = plan_rollback(deployment, replicasets, to_revision)
            except RollbackError as exc:
                return ActionResult(target, False, str(exc), dry_run)
            if rollback.patch is None:
                return ActionResult(target, True, rollback.message, dry_run)
            # Say who rolled back to what, in CHANGE-CAUSE.
            cause = change_cause(f"rollback to revision {rollback.to_revision}", self.user)
            rollback.patch[2]["value"][CHANGE_CAUSE] = cause
            rollback.patch[2]["value"][CHANGED_AT] = changed_now()
            what = f"{name} back to revision {rollback.to_revision}"
            return rollback.patch, f"rolled {what}", f"would roll {what}"

        return self._change(namespace, name, dry_run, plan)

    # -- the simple ones ----------------------------------------------------------------------
    def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool = False
    ) -> ActionResult:
        return self._change(
            namespace,
            name,
            dry_run,
            lambda d: (
                {"spec": {"replicas": replicas}},
                f"scaled {name} to {replicas}",
                f"would scale {name} to {replicas}",
            ),
        )

    def restart(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}},
            "metadata": {
                "annotations": {
                    CHANGE_CAUSE: change_cause("restart", self.user),
                    CHANGED_AT: changed_now(),
                }
            },
        }

        def plan(current: dict[str, Any]) -> tuple[Any, str, str] | ActionResult:
            if current["spec"].get("paused"):  # as kubectl: a paused rollout would not restart
                return ActionResult(
                    f"{namespace}/{name}",
                    False,
                    f"{name} is paused; resume it first (fleetdeck resume)",
                    dry_run,
                )
            return body, f"restarted {name}", f"would restart {name}"

        return self._change(namespace, name, dry_run, plan)

    def pause(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._change(
            namespace,
            name,
            dry_run,
            lambda d: ({"spec": {"paused": True}}, f"paused {name}", f"would pause {name}"),
        )

    def resume(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        return self._change(
            namespace,
            name,
            dry_run,
            lambda d: ({"spec": {"paused": None}}, f"resumed {name}", f"would resume {name}"),
        )

    def delete(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        """The Deployment with its Service, route and autoscaler: only what fleetdeck made."""
        target = f"{namespace}/{name}"

        def act() -> ActionResult:
            labels = self._read(namespace, name)["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_KEY) != "fleetdeck":
                return ActionResult(
                    target,
                    False,
                    f"{name} is not managed by fleetdeck "
                    f"({MANAGED_BY_KEY} is not fleetdeck); not deleted",
                    dry_run,
                )
            removed, failed = [], []
            for kind in DELETED_KINDS:
                try:
                    if self._delete_object(kind, namespace, name, dry_run):
                        removed.append(f"- {kind}/{name}")
                except Exception as exc:  # report the rest; what is gone stays listed
                    failed.append(f"{kind}/{name}: {_error_text(exc)}")
            verb = "would delete" if dry_run else "deleted"
            if failed:
                return ActionResult(
                    target,
                    False,
                    f"{verb} only part of {name}; failed: " + "; ".join(failed),
                    dry_run,
                    tuple(removed),
                )
            return ActionResult(target, True, f"{verb} {name}", dry_run, tuple(removed))

        return self._guarded(target, dry_run, act)

    def _namespaced(self, verb: str, kind: str, namespace: str, what: Any, dry_run: bool) -> Any:
        """``<verb>_namespaced_<noun>`` of the client API that serves ``kind``; ``what`` is the
        body to create or the name to delete."""
        run = "All" if dry_run else None
        if kind in CUSTOM_KINDS:  # the Gateway API's, KEDA's: custom resources
            group, version, plural = CUSTOM_KINDS[kind]
            call = getattr(self.custom, f"{verb}_namespaced_custom_object")
            return call(group, version, namespace, plural, what, dry_run=run)
        api, noun = OBJECT_APIS[kind]
        call = getattr(getattr(self, api), f"{verb}_namespaced_{noun}")
        if verb == "create":
            return call(namespace, what, dry_run=run)
        return call(what, namespace, dry_run=run)

    def _create_object(self, obj: dict[str, Any], namespace: str, dry_run: bool) -> None:
        self._namespaced("create", obj["kind"], namespace, obj, dry_run)

    def _delete_object(self, kind: str, namespace: str, name: str, dry_run: bool = False) -> bool:
        """Delete one object; False when it does not exist (or its API is not installed)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._namespaced("delete", kind, namespace, name, dry_run)
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 403 and kind == "ScaledObject":
                # May not delete ScaledObjects: delete never needed KEDA, it leaves them.
                return False
            raise
        return True
