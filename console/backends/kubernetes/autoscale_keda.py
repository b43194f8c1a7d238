"""KEDA as the autoscaling engine: a ``ScaledObject`` (keda.sh/v1alpha1) per deployment.

KEDA's operator makes and owns a HorizontalPodAutoscaler from it (``keda-hpa-<name>``, named
in the ScaledObject's ``status.hpaName``) and serves its trigger's value as an external metric;
the HPA controller then decides as for any HPA. A ``--rps-per-pod`` target is a ``prometheus``
trigger on the predictors' request rate: an ``AverageValue`` target of that many requests per
second per pod over the whole Deployment's rate,

    sum(rate(fleetdeck_predictor_requests_total{namespace="NS",app_kubernetes_io_name="NAME",
        protocol=~"v1|v2"}[1m]))

with the labels of the profile's ``[metrics]`` (``namespace_label``, ``deployment_label``) and
the range of its ``[autoscaling] rate_window``. Only predictions count (protocols v1 and v2, as
the console's own rates): Prometheus' scrapes and the probes are answered and counted too, and
would keep a deployment at its first replicas on their own. A ``--cpu`` target is KEDA's
``cpu`` trigger (a Utilization of the pods' CPU requests, through metrics-server).

Everything that goes into the query is checked: the names are DNS-1123 labels, the label names
Prometheus label names, the window a Prometheus duration, and the string values are quoted as
PromQL string literals whatever they hold.
"""

from __future__ import annotations

import json
import re
from typing import Any

from console.backends.kubernetes.manifests import (
    CHANGE_CAUSE,
    MANAGED_BY,
    MODEL_LABEL,
    NAME_LABEL,
    ManifestError,
    check_name,
)
from console.backends.kubernetes.templates import render
from console.model import AutoscaleRequest
from console.names import InvalidName, check_label
from console.profile import PROMETHEUS_DURATION, PROMETHEUS_LABEL, AutoscalingSettings

GROUP = "keda.sh"
VERSION = "v1alpha1"
PLURAL = "scaledobjects"
KIND = "ScaledObject"
REQUESTS_TOTAL = "fleetdeck_predictor_requests_total"
PREDICTION_PROTOCOLS = "v1|v2"
NOT_INSTALLED = (
    "KEDA is not installed in this cluster (no ScaledObject CRD): install KEDA or set "
    '[autoscaling] engine = "hpa"'
)
# The label KEDA puts on the HPA it makes for a ScaledObject (besides its owner reference).
SCALED_OBJECT_LABEL = "scaledobject.keda.sh/name"


def promql_string(value: str) -> str:
    """``value`` as a PromQL string literal (double-quoted, Go escapes): nothing in it can end
    the string or the selector."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def check_window(window: str) -> str:
    if not (PROMETHEUS_DURATION.fullmatch(window) and any(c in "123456789" for c in window)):
        raise ManifestError(f"invalid rate window {window!r}: use a duration such as 30s or 1m")
    return window


def check_prometheus_label(label: str) -> str:
    if not PROMETHEUS_LABEL.fullmatch(label):
        raise ManifestError(
            f"invalid Prometheus label name {label!r}: use letters, digits and _ "
            "(not starting with a digit)"
        )
    return label


def request_rate_query(
    namespace: str, name: str, *, namespace_label: str, deployment_label: str, window: str
) -> str:
    """PromQL for the predictions per second of Deployment ``namespace/name``, all its pods
    together (KEDA divides it by the replicas for an AverageValue target)."""
    try:
        check_label(namespace, "namespace")
    except InvalidName as exc:
        raise ManifestError(str(exc)) from None
    selector = ",".join(
        (
            f"{check_prometheus_label(namespace_label)}={promql_string(namespace)}",
            f"{check_prometheus_label(deployment_label)}={promql_string(check_name(name))}",
            f"protocol=~{promql_string(PREDICTION_PROTOCOLS)}",
        )
    )
    return f"sum(rate({REQUESTS_TOTAL}{{{selector}}}[{check_window(window)}]))"


def threshold(value: float) -> str:
    """A trigger's number as KEDA parses it (a float in a string): ``10``, ``12.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def trigger(
    namespace: str,
    request: AutoscaleRequest,
    settings: AutoscalingSettings,
    *,
    namespace_label: str,
    deployment_label: str,
) -> dict[str, Any]:
    """The ScaledObject's one trigger: CPU utilisation, or the request rate per pod."""
    if request.cpu_percent is not None:
        return {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(request.cpu_percent)},
        }
    assert request.rps_per_pod is not None
    if not settings.prometheus_url:
        raise ManifestError(
            "no Prometheus for KEDA: set [autoscaling] prometheus_url (or [metrics] prometheus_url)"
        )
    query = request_rate_query(
        namespace,
        request.name,
        namespace_label=namespace_label,
        deployment_label=deployment_label,
        window=settings.rate_window,
    )
    return {
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": settings.prometheus_url.rstrip("/"),
            "query": query,
            "threshold": threshold(request.rps_per_pod),
        },
    }


def scaled_object_manifest(
    namespace: str,
    request: AutoscaleRequest,
    deployment: dict[str, Any],
    cause: str,
    settings: AutoscalingSettings,
    *,
    namespace_label: str,
    deployment_label: str,
) -> dict[str, Any]:
    """The deployment's ScaledObject, from the ``scaledobject`` template."""
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    own_labels = {**MANAGED_BY, NAME_LABEL: check_name(request.name)}
    if MODEL_LABEL in labels:
        own_labels[MODEL_LABEL] = labels[MODEL_LABEL]
    advanced = None
    if request.scale_down_seconds is not None:
        window = {"stabilizationWindowSeconds": request.scale_down_seconds}
        advanced = {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": window}}}
    return render(
        "scaledobject",
        {
            "name": request.name,
            "namespace": namespace,
            "labels": own_labels,
            "annotations": {CHANGE_CAUSE: cause},
            "polling_seconds": settings.polling_seconds,
            "min_replicas": request.min_replicas,
            "max_replicas": request.max_replicas,
            "advanced": advanced,
            "triggers": [
                trigger(
                    namespace,
                    request,
                    settings,
                    namespace_label=namespace_label,
                    deployment_label=deployment_label,
                )
            ],
        },
    )


# -- the cluster ------------------------------------------------------------------------------
class KedaMissing(Exception):
    """The cluster serves no ScaledObject API (KEDA's CRDs are not installed)."""


def installed(custom: Any) -> bool:
    """Whether the cluster serves ``scaledobjects.keda.sh/v1alpha1`` (API discovery, which
    every authenticated user may read)."""
    from kubernetes.client.exceptions import ApiException

    try:
        answer = custom.get_api_resources(GROUP, VERSION, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    resources = json.loads(answer.data).get("resources") or []
    return any(r.get("name") == PLURAL for r in resources)


def read(custom: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The ScaledObject ``namespace/name``; None when there is none. Raises
    :class:`KedaMissing` when the cluster has no ScaledObject API at all."""
    from kubernetes.client.exceptions import ApiException

    try:
        answer = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
        if not installed(custom):
            raise KedaMissing(NOT_INSTALLED) from None
        return None
    return dict(json.loads(answer.data))


def create(custom: Any, namespace: str, body: dict[str, Any], dry_run: str | None) -> Any:
    answer = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run=dry_run, _preload_content=False
    )
    return json.loads(answer.data)


def patch(custom: Any, namespace: str, name: str, body: dict[str, Any], dry_run: str | None) -> Any:
    """A JSON merge patch: lists (the triggers) are replaced whole, a None removes a field."""
    answer = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body,
        dry_run=dry_run,
        _content_type="application/merge-patch+json",
        _preload_content=False,
    )
    return json.loads(answer.data)


def delete(custom: Any, namespace: str, name: str, dry_run: str | None) -> None:
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, dry_run=dry_run, _preload_content=False
    )


# -- reading it back ----------------------------------------------------------------------------
_KEDA_METRIC = re.compile(r"s(\d+)-")  # KEDA names trigger i's external metric "s<i>-<type>"


def is_request_rate(trigger: dict[str, Any]) -> bool:
    """A Prometheus trigger on the predictors' request counter: its value is req/s per pod."""
    metadata = trigger.get("metadata") or {}
    return trigger.get("type") == "prometheus" and REQUESTS_TOTAL in str(metadata.get("query"))


def target_text(trigger: dict[str, Any]) -> str:
    """``10 req/s per pod``, ``70% CPU``, or the trigger's type and its number."""
    kind = str(trigger.get("type", "?"))
    metadata = trigger.get("metadata") or {}
    if is_request_rate(trigger):
        return f"{metadata.get('threshold', '?')} req/s per pod"
    if kind in ("cpu", "memory"):
        value = metadata.get("value", "?")
        unit = "%" if trigger.get("metricType", "Utilization") == "Utilization" else ""
        return f"{value}{unit} {kind.upper() if kind == 'cpu' else kind}"
    number = metadata.get("threshold", metadata.get("value", "?"))
    return f"{kind} {number}"


def request_rate_metrics(scaled_object: dict[str, Any]) -> frozenset[int]:
    """The indexes of the triggers whose external metric is req/s per pod."""
    triggers = (scaled_object.get("spec") or {}).get("triggers") or []
    return frozenset(i for i, t in enumerate(triggers) if is_request_rate(t))


def trigger_index(metric_name: str) -> int | None:
    match = _KEDA_METRIC.match(metric_name)
    return int(match.group(1)) if match else None


def hpa_name(scaled_object: dict[str, Any]) -> str:
    """The HPA KEDA made for it: its status says; ``keda-hpa-<name>`` until it does."""
    status = scaled_object.get("status") or {}
    advanced = (scaled_object.get("spec") or {}).get("advanced") or {}
    configured = (advanced.get("horizontalPodAutoscalerConfig") or {}).get("name")
    name = (scaled_object.get("metadata") or {}).get("name", "")
    return str(status.get("hpaName") or configured or f"keda-hpa-{name}")
