"""``fleetdeck autoscale``: create or update a deployment's HorizontalPodAutoscaler.

Built from the same ``hpa`` template ``deploy`` uses (autoscaling/v2), targeting either CPU
utilisation or requests per second per pod. The req/s target is a ``Pods`` metric named
``fleetdeck_predictor_requests_per_second``: the per-pod rate of the predictor's
``fleetdeck_predictor_requests_total``, as a custom-metrics adapter serves it (for
prometheus-adapter, a rule matching ``fleetdeck_predictor_requests_total`` with
``name: {as: "${1}_per_second"}`` and ``rate(...[1m])``).

Only an autoscaler fleetdeck made is updated; someone else's is left alone and the refusal
says so. Every call can be a server-side dry run.
"""

from __future__ import annotations

import json
from typing import Any

from console.backends.kubernetes.actions import MANAGED_BY_KEY, api_error, diff
from console.backends.kubernetes.manifests import (
    CHANGE_CAUSE,
    MANAGED_BY,
    MODEL_LABEL,
    NAME_LABEL,
    change_cause,
    check_name,
)
from console.backends.kubernetes.templates import render
from console.model import ActionResult, AutoscalerCondition, AutoscaleRequest, AutoscalerInfo

REQUESTS_PER_SECOND = "fleetdeck_predictor_requests_per_second"
MERGE_PATCH = "application/merge-patch+json"


def quantity(value: float) -> str:
    """A Kubernetes quantity for a per-pod average: ``50``, or ``12500m`` for 12.5."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def metric_spec(request: AutoscaleRequest) -> list[dict[str, Any]]:
    if request.cpu_percent is not None:
        return [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": request.cpu_percent},
                },
            }
        ]
    assert request.rps_per_pod is not None
    return [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": REQUESTS_PER_SECOND},
                "target": {"type": "AverageValue", "averageValue": quantity(request.rps_per_pod)},
            },
        }
    ]


def hpa_manifest(
    namespace: str, request: AutoscaleRequest, deployment: dict[str, Any], cause: str
) -> dict[str, Any]:
    """The autoscaler for ``deployment``: the deploy template, its metrics replaced."""
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    own_labels = {**MANAGED_BY, NAME_LABEL: request.name}
    if MODEL_LABEL in labels:
        own_labels[MODEL_LABEL] = labels[MODEL_LABEL]
    hpa = render(
        "hpa",
        {
            "name": check_name(request.name),
            "namespace": namespace,
            "labels": own_labels,
            "min_replicas": request.min_replicas,
            "max_replicas": request.max_replicas,
            "cpu_percent": request.cpu_percent or 0,
        },
    )
    hpa["metadata"]["annotations"] = {CHANGE_CAUSE: cause}
    hpa["spec"]["metrics"] = metric_spec(request)
    return hpa


def autoscale(
    api_client: Any,
    namespace: str,
    request: AutoscaleRequest,
    *,
    user: str,
    dry_run: bool = False,
) -> ActionResult:
    """Create the deployment's autoscaler, or update the one fleetdeck made before."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    target = f"{namespace}/{request.name}"
    problems = request.problems()
    if problems:
        return ActionResult(target, False, "; ".join(problems), dry_run)
    apps: Any = client.AppsV1Api(api_client)
    autoscaling: Any = client.AutoscalingV2Api(api_client)
    dry = "All" if dry_run else None
    try:
        deployment = json.loads(
            apps.read_namespaced_deployment(request.name, namespace, _preload_content=False).data
        )
        cause = change_cause(f"autoscale {request.describe()}", user)
        wanted = hpa_manifest(namespace, request, deployment, cause)
        existing = _read_hpa(autoscaling, namespace, request.name)
        if existing is None:
            created = json.loads(
                autoscaling.create_namespaced_horizontal_pod_autoscaler(
                    namespace, wanted, dry_run=dry, _preload_content=False
                ).data
            )
            verb = "would create" if dry_run else "created"
            return ActionResult(
                target,
                True,
                f"{verb} autoscaler: {request.describe()}",
                dry_run,
                tuple(diff({}, {"spec": created.get("spec")})[:30]),
            )
        owner = ((existing.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_KEY)
        if owner != MANAGED_BY[MANAGED_BY_KEY]:
            return ActionResult(
                target,
                False,
                f"an autoscaler {request.name} exists that fleetdeck did not make "
                f"(managed-by {owner or 'unset'}); left unchanged: edit or delete it yourself",
                dry_run,
            )
        patch = {
            "metadata": {
                "labels": wanted["metadata"]["labels"],
                "annotations": {CHANGE_CAUSE: cause},
            },
            "spec": wanted["spec"],
        }
        updated = json.loads(
            autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                request.name,
                namespace,
                patch,
                dry_run=dry,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            ).data
        )
        changes = tuple(
            line
            for line in diff({"spec": existing.get("spec")}, {"spec": updated.get("spec")})[:30]
        )
        if not changes:
            return ActionResult(target, True, f"autoscaler already {request.describe()}", dry_run)
        verb = "would update" if dry_run else "updated"
        return ActionResult(
            target, True, f"{verb} autoscaler: {request.describe()}", dry_run, changes
        )
    except ApiException as exc:
        if exc.status == 404 and "deployments" in (exc.body or ""):
            return ActionResult(
                target, False, f"deployment {request.name!r} not found in {namespace}", dry_run
            )
        return ActionResult(target, False, api_error(exc), dry_run)
    except HTTPError as exc:
        return ActionResult(target, False, f"cannot reach the API server: {exc}", dry_run)


def _read_hpa(autoscaling: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        answer = autoscaling.read_namespaced_horizontal_pod_autoscaler(
            name, namespace, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(json.loads(answer.data))


def _target_text(metric: dict[str, Any]) -> str:
    kind = metric.get("type", "")
    body = metric.get(kind[:1].lower() + kind[1:], {}) if kind else {}
    target = body.get("target") or {}
    if kind == "Resource":
        name = body.get("name", "")
        if "averageUtilization" in target:
            return f"{target['averageUtilization']}% {name.upper()}"
        return f"{target.get('averageValue', target.get('value', '?'))} {name}"
    if kind == "Pods" and (body.get("metric") or {}).get("name") == REQUESTS_PER_SECOND:
        return f"{_per_pod(str(target.get('averageValue', '?')))} req/s per pod"
    name = (body.get("metric") or {}).get("name", kind)
    return f"{name} {target.get('averageValue', target.get('value', '?'))}"


def _per_pod(text: str) -> str:
    """``12500m`` back to ``12.5`` (the inverse of :func:`quantity`)."""
    try:
        value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return text
    return f"{value:g}"


def autoscaler_info(hpa: dict[str, Any]) -> AutoscalerInfo:
    meta, spec, status = hpa.get("metadata") or {}, hpa.get("spec") or {}, hpa.get("status") or {}
    return AutoscalerInfo(
        name=meta.get("name", ""),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 0)),
        current_replicas=status.get("currentReplicas"),
        desired_replicas=status.get("desiredReplicas"),
        targets=tuple(_target_text(m) for m in spec.get("metrics") or ()),
        conditions=tuple(
            AutoscalerCondition(
                c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")
            )
            for c in status.get("conditions") or ()
        ),
        managed_by_fleetdeck=((meta.get("labels") or {}).get(MANAGED_BY_KEY) == "fleetdeck"),
    )


def read_autoscaler(api_client: Any, namespace: str, name: str) -> AutoscalerInfo | None:
    """The deployment's autoscaler (an HPA of the same name), or None when it has none."""
    from kubernetes import client

    hpa = _read_hpa(client.AutoscalingV2Api(api_client), namespace, name)
    return None if hpa is None else autoscaler_info(hpa)
