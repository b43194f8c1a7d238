"""``fleetdeck autoscale``: create or update a deployment's autoscaler, through the engine the
profile's ``[autoscaling]`` names, and read it back.

- **hpa** (the default): a HorizontalPodAutoscaler (autoscaling/v2) of the deployment's name,
  from the same ``hpa`` template ``deploy`` uses, targeting CPU utilisation (metrics-server) or
  requests per second per pod. The req/s target is a ``Pods`` metric named
  ``fleetdeck_predictor_requests_per_second``: the per-pod rate of the predictor's
  ``fleetdeck_predictor_requests_total``, as a custom-metrics adapter serves it (for
  prometheus-adapter, a rule matching ``fleetdeck_predictor_requests_total`` with
  ``name: {as: "${1}_per_second"}`` and ``rate(...[1m])``).
- **keda**: a KEDA ScaledObject of the deployment's name (``autoscale_keda``); KEDA makes and
  owns the HPA.

``--scale-down-window`` is the HPA's scale-down stabilization window in both
(``spec.behavior`` of the HPA, ``spec.advanced.horizontalPodAutoscalerConfig.behavior`` of the
ScaledObject); left out, the field is removed and the controller's default (300 s) applies.

Only fleetdeck's own objects are created, updated or removed: an autoscaler someone else made
for the deployment (an HPA of its name or targeting it, a ScaledObject of its name) is refused
and left alone. When the profile's engine changed, fleetdeck's object of the other engine is
removed in the same action (a dry run says it would be), so two controllers never fight over
one Deployment. Every request can be a server-side dry run; when something is removed, the new
object is first checked by a dry run so nothing is removed for an object the server refuses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from console.backends.base import BackendError
from console.backends.kubernetes import autoscale_keda as keda
from console.backends.kubernetes.actions import MANAGED_BY_KEY, api_error, diff
from console.backends.kubernetes.manifests import (
    CHANGE_CAUSE,
    MANAGED_BY,
    MODEL_LABEL,
    NAME_LABEL,
    ManifestError,
    change_cause,
    check_name,
)
from console.backends.kubernetes.templates import render
from console.model import (
    ActionResult,
    AutoscalerCondition,
    AutoscaleRequest,
    AutoscalerInfo,
    ScalingDecision,
)
from console.profile import AutoscalingSettings, MetricsSettings

REQUESTS_PER_SECOND = "fleetdeck_predictor_requests_per_second"
MERGE_PATCH = "application/merge-patch+json"
HPA = "HorizontalPodAutoscaler"
Engine = Literal["hpa", "keda"]
ENGINE_KINDS: dict[str, str] = {"hpa": HPA, "keda": keda.KIND}
MAX_CHANGES = 30


def quantity(value: float) -> str:
    """A Kubernetes quantity for a per-pod average: ``50``, or ``12500m`` for 12.5."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)")
_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
}


def parse_quantity(text: object) -> float | None:
    """A Kubernetes quantity's value (``24100m`` → 24.1); None when it is not one."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        return None
    value = float(match.group(1)) * _SUFFIXES[match.group(2)]
    return value if math.isfinite(value) else None


def number_text(value: float) -> str:
    """A measured number as a person reads it: ``24.1``, ``3``, ``0.42``."""
    if abs(value) >= 10 or float(value).is_integer():
        return f"{round(value, 1):g}"
    return f"{value:.2g}" if abs(value) < 1 else f"{round(value, 2):g}"


# -- the HPA engine's object -----------------------------------------------------------------
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


def behavior(request: AutoscaleRequest) -> dict[str, Any] | None:
    """The HPA's ``spec.behavior`` for ``--scale-down-window``; None: the controller's own."""
    if request.scale_down_seconds is None:
        return None
    return {"scaleDown": {"stabilizationWindowSeconds": request.scale_down_seconds}}


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
    scale_down = behavior(request)
    if scale_down is not None:
        hpa["spec"]["behavior"] = scale_down
    return hpa


# -- what already scales the deployment, and what to do (pure) ---------------------------------
@dataclass(frozen=True)
class Existing:
    """An autoscaler found for the deployment: an HPA or a ScaledObject."""

    kind: str  # HorizontalPodAutoscaler | ScaledObject
    name: str
    managed_by: str  # its managed-by label, "" when unset
    scaled_object: str = ""  # an HPA that KEDA made: its ScaledObject's name

    @property
    def fleetdecks(self) -> bool:
        return self.managed_by == MANAGED_BY[MANAGED_BY_KEY]

    def describe(self) -> str:
        return f"{'KEDA ScaledObject' if self.kind == keda.KIND else self.kind} {self.name}"


@dataclass(frozen=True)
class Plan:
    """``update``: the engine's own object of the deployment's name is fleetdeck's (patch it),
    else create it; ``remove``: fleetdeck's objects of the other engine; ``refusal``: why
    nothing may be done (someone else's autoscaler)."""

    update: bool = False
    remove: tuple[Existing, ...] = ()
    refusal: str = ""


def existing_hpa(hpa: dict[str, Any]) -> Existing:
    meta = hpa.get("metadata") or {}
    labels = meta.get("labels") or {}
    owner = next(
        (
            str(ref.get("name", ""))
            for ref in meta.get("ownerReferences") or ()
            if ref.get("kind") == keda.KIND
        ),
        "",
    )
    return Existing(
        HPA,
        str(meta.get("name", "")),
        str(labels.get(MANAGED_BY_KEY) or ""),
        owner or str(labels.get(keda.SCALED_OBJECT_LABEL) or ""),
    )


def existing_scaled_object(scaled_object: dict[str, Any]) -> Existing:
    meta = scaled_object.get("metadata") or {}
    labels = meta.get("labels") or {}
    return Existing(keda.KIND, str(meta.get("name", "")), str(labels.get(MANAGED_BY_KEY) or ""))


def scales(hpa: dict[str, Any], deployment: str) -> bool:
    """Whether the HPA targets Deployment ``deployment``."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return ref.get("kind") == "Deployment" and ref.get("name") == deployment


def plan(
    engine: Engine, name: str, hpas: Sequence[Existing], scaled_object: Existing | None
) -> Plan:
    """What ``fleetdeck autoscale NAME`` may do given the autoscalers found: ``hpas`` of the
    deployment's name or targeting it, and the ScaledObject of its name."""

    def theirs(found: Existing, why: str) -> Plan:
        owner = found.managed_by or "unset"
        return Plan(
            refusal=(
                f"{why} (managed-by {owner}); left unchanged and nothing made beside it (two "
                "autoscalers would fight over the deployment): edit or delete it yourself"
            )
        )

    update = False
    remove: list[Existing] = []
    ours_keda = scaled_object is not None and scaled_object.fleetdecks
    if scaled_object is not None:
        if not scaled_object.fleetdecks:
            return theirs(
                scaled_object, f"a KEDA ScaledObject {name} exists that fleetdeck did not make"
            )
        if engine == "keda":
            update = True
        else:
            remove.append(scaled_object)
    for hpa in hpas:
        if hpa.scaled_object:
            if ours_keda and hpa.scaled_object == name:
                continue  # KEDA's HPA for fleetdeck's ScaledObject: it goes with it
            return theirs(
                hpa,
                f"HorizontalPodAutoscaler {hpa.name}, made by KEDA for ScaledObject "
                f"{hpa.scaled_object} that fleetdeck did not make, scales {name}",
            )
        if hpa.name != name:
            return theirs(
                hpa, f"HorizontalPodAutoscaler {hpa.name} that fleetdeck did not make scales {name}"
            )
        if not hpa.fleetdecks:
            return theirs(hpa, f"an autoscaler {name} exists that fleetdeck did not make")
        if engine == "hpa":
            update = True
        else:
            remove.append(hpa)
    return Plan(update, tuple(remove))


def engine_text(engine: str, name: str) -> str:
    return f"engine {engine}: {ENGINE_KINDS.get(engine, engine)} {name}"


# -- the action ---------------------------------------------------------------------------------
@dataclass
class _Apis:
    apps: Any
    autoscaling: Any
    custom: Any


def autoscale(
    api_client: Any,
    namespace: str,
    request: AutoscaleRequest,
    *,
    user: str,
    settings: AutoscalingSettings | None = None,
    metrics: MetricsSettings | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """Create the deployment's autoscaler through the profile's engine, or update the one
    fleetdeck made before (removing fleetdeck's object of the other engine)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    settings = settings or AutoscalingSettings()
    metrics = metrics or MetricsSettings()
    target = f"{namespace}/{request.name}"
    problems = request.problems()
    if problems:
        return ActionResult(target, False, "; ".join(problems), dry_run)
    if settings.engine not in ("hpa", "keda"):
        text = f"engine {settings.engine!r} is not for Kubernetes: set [autoscaling] engine"
        return ActionResult(target, False, text, dry_run)
    engine: Engine = "keda" if settings.engine == "keda" else "hpa"
    apis = _Apis(
        client.AppsV1Api(api_client),
        client.AutoscalingV2Api(api_client),
        client.CustomObjectsApi(api_client),
    )
    try:
        return _autoscale(apis, namespace, request, engine, settings, metrics, user, dry_run)
    except keda.KedaMissing as exc:
        return ActionResult(target, False, str(exc), dry_run)
    except (ManifestError, BackendError) as exc:  # a name or setting the object cannot hold
        return ActionResult(target, False, str(exc), dry_run)
    except ApiException as exc:
        if exc.status == 404 and "deployments" in (exc.body or ""):
            return ActionResult(
                target, False, f"deployment {request.name!r} not found in {namespace}", dry_run
            )
        return ActionResult(target, False, api_error(exc), dry_run)
    except HTTPError as exc:
        return ActionResult(target, False, f"cannot reach the API server: {exc}", dry_run)


def _autoscale(
    apis: _Apis,
    namespace: str,
    request: AutoscaleRequest,
    engine: Engine,
    settings: AutoscalingSettings,
    metrics: MetricsSettings,
    user: str,
    dry_run: bool,
) -> ActionResult:
    target = f"{namespace}/{request.name}"
    name = check_name(request.name)
    deployment = json.loads(
        apis.apps.read_namespaced_deployment(name, namespace, _preload_content=False).data
    )
    cause = change_cause(f"autoscale {request.describe()}", user)
    if engine == "keda":
        wanted = keda.scaled_object_manifest(
            namespace,
            request,
            deployment,
            cause,
            settings,
            namespace_label=metrics.namespace_label,
            deployment_label=metrics.deployment_label,
        )
        scaled = keda.read(apis.custom, namespace, name)  # KedaMissing without the CRD
    else:
        wanted = hpa_manifest(namespace, request, deployment, cause)
        # A user who may not read ScaledObjects sees none (the HPA path never needed KEDA).
        scaled = _scaled_object_if_any(apis.custom, namespace, name, forbidden_is_none=True)
    hpas = [
        h
        for h in _list_hpas(apis.autoscaling, namespace)
        if (h.get("metadata") or {}).get("name") == name or scales(h, name)
    ]
    found = plan(
        engine,
        name,
        [existing_hpa(h) for h in hpas],
        None if scaled is None else existing_scaled_object(scaled),
    )
    if found.refusal:
        return ActionResult(target, False, found.refusal, dry_run)
    current = (
        scaled
        if engine == "keda"
        else next((h for h in hpas if (h.get("metadata") or {}).get("name") == name), None)
    )
    send = _sender(apis, namespace, name, engine, wanted, update=found.update)
    if found.remove and not dry_run:
        send("All")  # the server accepts the new object before anything is removed
    removed = []
    for old in found.remove:
        _delete(apis, namespace, old, "All" if dry_run else None)
        removed.append(old)
    made = send("All" if dry_run else None)
    before = {"spec": (current or {}).get("spec")} if found.update else {}
    changes = [f"- {old.kind}/{old.name} (fleetdeck's, the other engine's)" for old in removed]
    changes += diff(before, {"spec": made.get("spec")})[:MAX_CHANGES]
    suffix = f" ({engine_text(engine, name)})"
    if removed:
        verb = "would remove" if dry_run else "removed"
        olds = ", ".join(f"fleetdeck's {old.describe()}" for old in removed)
        suffix += f"; {verb} {olds} so that two autoscalers do not fight over {name}"
    if found.update and not changes:
        return ActionResult(
            target, True, f"autoscaler already {request.describe()}{suffix}", dry_run
        )
    if found.update:
        verb = "would update" if dry_run else "updated"
    else:
        verb = "would create" if dry_run else "created"
    message = f"{verb} autoscaler: {request.describe()}{suffix}"
    return ActionResult(target, True, message, dry_run, tuple(changes))


def _sender(
    apis: _Apis,
    namespace: str,
    name: str,
    engine: Engine,
    wanted: dict[str, Any],
    *,
    update: bool,
) -> Callable[[str | None], dict[str, Any]]:
    """Sends the wanted object (created, or merge-patched onto fleetdeck's), dry or not."""
    patch = {
        "metadata": {
            "labels": wanted["metadata"]["labels"],
            "annotations": wanted["metadata"]["annotations"],
        },
        # None removes what the request leaves out (a scale-down window set before).
        "spec": {
            **wanted["spec"],
            **({"behavior": None} if engine == "hpa" and "behavior" not in wanted["spec"] else {}),
            **({"advanced": None} if engine == "keda" and "advanced" not in wanted["spec"] else {}),
        },
    }

    def send(dry: str | None) -> dict[str, Any]:
        if engine == "keda":
            if update:
                return dict(keda.patch(apis.custom, namespace, name, patch, dry))
            return dict(keda.create(apis.custom, namespace, wanted, dry))
        if update:
            answer = apis.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                name,
                namespace,
                patch,
                dry_run=dry,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        else:
            answer = apis.autoscaling.create_namespaced_horizontal_pod_autoscaler(
                namespace, wanted, dry_run=dry, _preload_content=False
            )
        return dict(json.loads(answer.data))

    return send


def _delete(apis: _Apis, namespace: str, old: Existing, dry: str | None) -> None:
    if old.kind == keda.KIND:
        keda.delete(apis.custom, namespace, old.name, dry)
    else:
        apis.autoscaling.delete_namespaced_horizontal_pod_autoscaler(
            old.name, namespace, dry_run=dry, _preload_content=False
        )


def _list_hpas(autoscaling: Any, namespace: str) -> list[dict[str, Any]]:
    answer = autoscaling.list_namespaced_horizontal_pod_autoscaler(
        namespace, _preload_content=False
    )
    return list(json.loads(answer.data).get("items") or [])


def _scaled_object_if_any(
    custom: Any, namespace: str, name: str, *, forbidden_is_none: bool = False
) -> dict[str, Any] | None:
    """The ScaledObject of the name, None when there is none or no KEDA in the cluster (or,
    with ``forbidden_is_none``, when the user may not read it)."""
    from kubernetes.client.exceptions import ApiException

    try:
        answer = custom.get_namespaced_custom_object(
            keda.GROUP, keda.VERSION, namespace, keda.PLURAL, name, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404 or (forbidden_is_none and exc.status == 403):
            return None
        raise
    return dict(json.loads(answer.data))


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


# -- reading it back --------------------------------------------------------------------------
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
    value = parse_quantity(text)
    return text if value is None else f"{value:g}"


def current_text(metric: dict[str, Any], request_rate: Callable[[str], bool]) -> str | None:
    """One of an HPA's ``status.currentMetrics`` in the targets' words: ``45% CPU``,
    ``24.1 req/s per pod``; ``request_rate(name)`` says whether an External metric is the
    predictors' req/s per pod. None when it holds no number."""
    kind = str(metric.get("type", ""))
    body = (metric.get(kind[:1].lower() + kind[1:]) if kind else None) or {}
    current = body.get("current") or {}
    if kind in ("Resource", "ContainerResource"):
        resource = str(body.get("name", ""))
        if current.get("averageUtilization") is not None:
            return f"{current['averageUtilization']}% {resource.upper()}"
        value = parse_quantity(current.get("averageValue"))
        return None if value is None else f"{number_text(value)} {resource}"
    metric_name = str((body.get("metric") or {}).get("name", kind))
    raw = current.get("averageValue", current.get("value"))
    value = parse_quantity(raw) if raw is not None else None
    if value is None:
        return None
    if (kind == "Pods" and metric_name == REQUESTS_PER_SECOND) or (
        kind == "External" and request_rate(metric_name)
    ):
        return f"{number_text(value)} req/s per pod"
    return f"{metric_name} {number_text(value)}"


_RESCALE = re.compile(r"New size: (\d+); reason: (.*)", re.DOTALL)
_SELECTOR = re.compile(r"\(&LabelSelector\{")


def _without_selectors(text: str) -> str:
    """The controller's reason without the Go dump of a metric's label selector: ``external
    metric s0-prometheus(&LabelSelector{...}) above target`` → ``external metric
    s0-prometheus above target``."""
    out, at = [], 0
    for match in _SELECTOR.finditer(text):
        if match.start() < at:
            continue
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        if depth or end >= len(text) or text[end] != ")":
            continue  # not the shape expected: left as it is
        out.append(text[at : match.start()])
        at = end + 1
    out.append(text[at:])
    return "".join(out).strip()


def _event_time(event: dict[str, Any]) -> float | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        value = event.get(key)
        if value:
            try:
                return datetime.fromisoformat(str(value)).timestamp()
            except ValueError:
                continue
    created = (event.get("metadata") or {}).get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(created)).timestamp() if created else None
    except ValueError:
        return None


def decisions(events: Sequence[dict[str, Any]]) -> tuple[ScalingDecision, ...]:
    """The HPA controller's ``SuccessfulRescale`` events as decisions, newest first.

    An event says the new size and why, not the size before: ``from_replicas`` is the previous
    decision's new size, and 0 (unknown; shown as ``?``) for the oldest one kept. The API
    server folds repeats of the same message into one event (its count), dated by its last
    occurrence, and keeps events for its event TTL (1 h by default)."""
    found: list[tuple[float, int, str]] = []
    for event in events:
        if event.get("reason") != "SuccessfulRescale":
            continue
        match = _RESCALE.match(str(event.get("message", "")))
        at = _event_time(event)
        if match is None or at is None:
            continue
        found.append((at, int(match.group(1)), _without_selectors(match.group(2))))
    found.sort(key=lambda item: item[0])
    made: list[ScalingDecision] = []
    previous = 0
    for at, size, why in found:
        made.append(ScalingDecision(at, previous, size, why))
        previous = size
    return tuple(reversed(made))


def _hpa_events(core: Any, namespace: str, hpa: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of the HPA (this one: its uid); none when they cannot be read."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    meta = hpa.get("metadata") or {}
    selector = f"involvedObject.kind={HPA},involvedObject.name={meta.get('name', '')}"
    try:
        answer = core.list_namespaced_event(
            namespace, field_selector=selector, _preload_content=False
        )
    except (ApiException, HTTPError):
        return []
    uid = meta.get("uid")
    return [
        e
        for e in json.loads(answer.data).get("items") or []
        if not uid or (e.get("involvedObject") or {}).get("uid") in (None, uid)
    ]


def _conditions(status: dict[str, Any], only: Sequence[str] = ()) -> list[AutoscalerCondition]:
    return [
        AutoscalerCondition(
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            str(c.get("message", "")),
        )
        for c in status.get("conditions") or ()
        if not only or c.get("type") in only
    ]


def _managed(meta: dict[str, Any]) -> bool:
    return (meta.get("labels") or {}).get(MANAGED_BY_KEY) == MANAGED_BY[MANAGED_BY_KEY]


def autoscaler_info(hpa: dict[str, Any], events: Sequence[dict[str, Any]] = ()) -> AutoscalerInfo:
    """A plain HPA (the hpa engine) as the front-ends show it."""
    meta, spec, status = hpa.get("metadata") or {}, hpa.get("spec") or {}, hpa.get("status") or {}
    current = (current_text(m, lambda _: False) for m in status.get("currentMetrics") or ())
    return AutoscalerInfo(
        name=meta.get("name", ""),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 0)),
        current_replicas=status.get("currentReplicas"),
        desired_replicas=status.get("desiredReplicas"),
        targets=tuple(_target_text(m) for m in spec.get("metrics") or ()),
        conditions=tuple(_conditions(status)),
        managed_by_fleetdeck=_managed(meta),
        current=tuple(c for c in current if c),
        engine="hpa",
        decisions=decisions(events),
    )


def scaled_object_info(
    scaled_object: dict[str, Any],
    hpa: dict[str, Any] | None,
    events: Sequence[dict[str, Any]] = (),
) -> AutoscalerInfo:
    """A ScaledObject (the keda engine) with the HPA KEDA made for it (None until it has):
    bounds and targets from the ScaledObject, replicas, metrics and decisions from the HPA,
    the HPA's conditions and the ScaledObject's Ready and Active."""
    meta = scaled_object.get("metadata") or {}
    spec = scaled_object.get("spec") or {}
    hpa_status = (hpa or {}).get("status") or {}
    rate_triggers = keda.request_rate_metrics(scaled_object)

    def request_rate(metric_name: str) -> bool:
        return keda.trigger_index(metric_name) in rate_triggers

    current = (current_text(m, request_rate) for m in hpa_status.get("currentMetrics") or ())
    conditions = _conditions(hpa_status) + [
        AutoscalerCondition(f"ScaledObject{c.type}", c.status, c.reason, c.message)
        for c in _conditions(scaled_object.get("status") or {}, ("Ready", "Active"))
    ]
    return AutoscalerInfo(
        name=str(meta.get("name", "")),
        # KEDA's defaults: 0 (scale to zero) and 100.
        min_replicas=int(spec.get("minReplicaCount", 0)),
        max_replicas=int(spec.get("maxReplicaCount", 100)),
        current_replicas=hpa_status.get("currentReplicas"),
        desired_replicas=hpa_status.get("desiredReplicas"),
        targets=tuple(keda.target_text(t) for t in spec.get("triggers") or ()),
        conditions=tuple(conditions),
        managed_by_fleetdeck=_managed(meta),
        current=tuple(c for c in current if c),
        engine="keda",
        decisions=decisions(events),
    )


def read_autoscaler(
    api_client: Any, namespace: str, name: str, engine: str = "hpa"
) -> AutoscalerInfo | None:
    """The deployment's autoscaler, or None when it has none: its ScaledObject (with the HPA
    KEDA made) or its HPA, both of the deployment's name; the profile's ``engine`` is looked
    for first, the other after (an autoscaler made before the profile changed engine)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    autoscaling: Any = client.AutoscalingV2Api(api_client)
    custom: Any = client.CustomObjectsApi(api_client)
    core: Any = client.CoreV1Api(api_client)

    def as_hpa() -> AutoscalerInfo | None:
        hpa = _read_hpa(autoscaling, namespace, name)
        if hpa is None:
            return None
        return autoscaler_info(hpa, _hpa_events(core, namespace, hpa))

    def as_keda() -> AutoscalerInfo | None:
        scaled = _scaled_object_if_any(custom, namespace, name)
        if scaled is None:
            return None
        hpa = _read_hpa(autoscaling, namespace, keda.hpa_name(scaled))
        events = _hpa_events(core, namespace, hpa) if hpa is not None else []
        return scaled_object_info(scaled, hpa, events)

    first, then = (as_keda, as_hpa) if engine == "keda" else (as_hpa, as_keda)
    found = first()
    if found is not None:
        return found
    try:
        return then()
    except ApiException as exc:
        if exc.status == 403:  # may not read the other engine's objects: none shown
            return None
        raise
