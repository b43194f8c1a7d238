"""The objects fleetdeck creates, built from the profile, the action and the templates.

Conventions (DESIGN.md): labels ``app.kubernetes.io/managed-by=fleetdeck``,
``app.kubernetes.io/name``, ``fleetdeck.io/model``, ``fleetdeck.io/model-version``; annotations
``kubernetes.io/change-cause`` (what, by whom, from fleetdeck) and ``fleetdeck.io/model-uri``.
The predictor serves its model under the Deployment's name, so each route matches its own
``/v1/models/<name>`` and ``/v2/models/<name>`` paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from console.backends.kubernetes.templates import render
from console.names import InvalidName, check_label
from console.profile import Profile, Toleration

MANAGED_BY = {"app.kubernetes.io/managed-by": "fleetdeck"}
NAME_LABEL = "app.kubernetes.io/name"
MODEL_LABEL = "fleetdeck.io/model"
VERSION_LABEL = "fleetdeck.io/model-version"
SWEEP_LABEL = "fleetdeck.io/sweep"
KIND_LABEL = "fleetdeck.io/kind"  # on Jobs: "score" for scoring (training's carry none)
SCORE_COMMAND = ("python", "-m", "training.score")
# The training image's entrypoint (training/Dockerfile): installs the code, then runs the module.
START_COMMAND = ("/opt/fleetdeck/start.sh",)
CHANGE_CAUSE = "kubernetes.io/change-cause"
# When fleetdeck made the change (UTC, ISO 8601), beside its change-cause. The deployment
# controller copies both onto the new ReplicaSet, so every revision fleetdeck made carries its
# own time; one made by another client carries a copy of an older stamp, which tells them apart.
CHANGED_AT = "fleetdeck.io/changed-at"
MODEL_URI = "fleetdeck.io/model-uri"
GPU = "nvidia.com/gpu"
PROGRESS_DEADLINE_SECONDS = 600


class ManifestError(ValueError):
    """An action that cannot become valid objects (a bad name, say); the message says why."""


def check_name(name: str, what: str = "deployment name") -> str:
    try:
        return check_label(name, what)
    except InvalidName as exc:
        raise ManifestError(str(exc)) from None


def change_cause(action: str, user: str) -> str:
    return f"{action} by {user} via fleetdeck"


def changed_now() -> str:
    """The value of :data:`CHANGED_AT` for a change made now."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def model_uri(profile: Profile, model: str, version: int) -> str:
    return f"{profile.store.root.rstrip('/')}/{model}/{version}"


def predictor_labels(name: str, model: str, version: int) -> dict[str, str]:
    return {**MANAGED_BY, NAME_LABEL: name, MODEL_LABEL: model, VERSION_LABEL: str(version)}


def _tolerations(tolerations: Sequence[Toleration]) -> list[dict[str, Any]]:
    rendered = []
    for t in tolerations:
        item = {
            "key": t.key,
            "operator": t.operator,
            "value": t.value,
            "effect": t.effect,
            "tolerationSeconds": t.toleration_seconds,
        }
        rendered.append({k: v for k, v in item.items() if v is not None})
    return rendered


def _resources(requests: Mapping[str, str], limits: Mapping[str, str], gpus: int) -> Any:
    limits = dict(limits)
    if gpus:
        limits[GPU] = str(gpus)
    return {"requests": dict(requests), "limits": limits}


def predictor_env(profile: Profile, name: str, uri: str) -> list[dict[str, str]]:
    settings = profile.predictor
    env = {
        "FLEETDECK_MODEL_URI": uri,
        "FLEETDECK_MODEL_NAME": name,
        "FLEETDECK_PORT": str(settings.port),
        "FLEETDECK_MAX_BATCH_SIZE": str(settings.max_batch_size),
        "FLEETDECK_BATCH_TIMEOUT_MS": str(settings.batch_timeout_ms),
        "FLEETDECK_DRAIN_SECONDS": str(settings.drain_seconds),
    }
    return [{"name": k, "value": v} for k, v in env.items()]


def predictor_template_values(
    profile: Profile,
    namespace: str,
    name: str,
    model: str,
    version: int,
    *,
    replicas: int | None,
    gpus: int,
    cause: str,
) -> dict[str, Any]:
    settings = profile.predictor
    uri = model_uri(profile, model, version)
    on_gpu = profile.training if gpus else None
    drain = max(1, round(settings.drain_seconds))
    return {
        "name": check_name(name),
        "namespace": namespace,
        "labels": predictor_labels(name, model, version),
        "annotations": {CHANGE_CAUSE: cause, CHANGED_AT: changed_now(), MODEL_URI: uri},
        "pod_annotations": {MODEL_URI: uri},
        "replicas": settings.replicas if replicas is None else replicas,
        "progress_deadline_seconds": PROGRESS_DEADLINE_SECONDS,
        "termination_grace_seconds": 2 * drain + 30,
        "drain_seconds": drain,
        "node_selector": dict(on_gpu.node_selector) if on_gpu else {},
        "tolerations": _tolerations(on_gpu.tolerations) if on_gpu else [],
        "image": profile.images.predictor,
        "env": predictor_env(profile, name, uri),
        "port": settings.port,
        "resources": _resources(settings.resources.requests, settings.resources.limits, gpus),
    }


def predictor_objects(
    profile: Profile,
    namespace: str,
    name: str,
    model: str,
    version: int,
    *,
    replicas: int | None = None,
    gpus: int = 0,
    cause: str,
) -> list[dict[str, Any]]:
    """Deployment, Service, route (per profile) and HorizontalPodAutoscaler (if configured)."""
    values = predictor_template_values(
        profile, namespace, name, model, version, replicas=replicas, gpus=gpus, cause=cause
    )
    objects = [render("deployment", values), render("service", values)]
    route = profile.route
    if route.kind == "Ingress":
        objects.append(
            render("ingress", {**values, "host": route.host, "ingress_class": route.ingress_class})
        )
    elif route.kind == "HTTPRoute":
        parent: dict[str, Any] = {"name": route.gateway}
        if route.gateway_namespace:
            parent["namespace"] = route.gateway_namespace
        objects.append(
            render(
                "httproute",
                {
                    **values,
                    "parent_refs": [parent],
                    "hostnames": [route.host] if route.host else None,
                },
            )
        )
    autoscale = profile.predictor.autoscale
    if autoscale is not None:
        objects.append(
            render(
                "hpa",
                {
                    **values,
                    "min_replicas": autoscale.min_replicas,
                    "max_replicas": autoscale.max_replicas,
                    "cpu_percent": autoscale.cpu_percent,
                },
            )
        )
    return objects


def training_job(
    profile: Profile,
    namespace: str,
    name: str,
    model: str,
    data: str,
    *,
    gpus: int | None = None,
    epochs: int | None = None,
    params: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    sweep: str | None = None,
    trial: int | None = None,
    cause: str,
) -> dict[str, Any]:
    """A ``batch/v1`` Job running ``python -m training`` through the base image's start.sh."""
    settings = profile.training
    gpus = settings.gpus if gpus is None else gpus
    labels = {**MANAGED_BY, NAME_LABEL: check_name(name, "job name"), MODEL_LABEL: model}
    env = {
        "FLEETDECK_MODEL": model,
        "FLEETDECK_DATA": data,
        "FLEETDECK_STORE": profile.store.root,
        "FLEETDECK_RUN_ID": name,
    }
    if epochs is not None:
        env["FLEETDECK_EPOCHS"] = str(epochs)
    if params:
        env["FLEETDECK_PARAM"] = " ".join(f"{k}={v}" for k, v in params.items())
    if settings.code:
        env["FLEETDECK_TRAINING_CODE"] = settings.code
    if sweep is not None:
        labels[SWEEP_LABEL] = sweep
        env.update({"FLEETDECK_SWEEP": sweep, "FLEETDECK_TRIAL": str(trial)})
    job = render(
        "job",
        {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {CHANGE_CAUSE: cause},
            "backoff_limit": settings.backoff_limit,
            "active_deadline_seconds": settings.active_deadline_seconds,
            "ttl_seconds_after_finished": settings.ttl_seconds_after_finished,
            "node_selector": dict(settings.node_selector) if gpus else {},
            "tolerations": _tolerations(settings.tolerations) if gpus else [],
            "image": profile.images.training,
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "resources": {"limits": {GPU: str(gpus)}} if gpus else {},
        },
    )
    if args:
        job["spec"]["template"]["spec"]["containers"][0]["args"] = list(args)
    return job


def scoring_job(
    profile: Profile,
    namespace: str,
    name: str,
    model: str,
    version: int,
    inputs: str,
    *,
    batch_size: int | None = None,
    cause: str,
) -> dict[str, Any]:
    """A ``batch/v1`` Job running ``python -m training.score`` in the training image: no GPU
    (the runtimes score on CPU, every core), the predictor's requests and limits (the same
    model in the same runtime), the training Job's backoff, deadline and TTL."""
    settings = profile.training
    labels = {
        **MANAGED_BY,
        NAME_LABEL: check_name(name, "job name"),
        MODEL_LABEL: model,
        VERSION_LABEL: str(version),
        KIND_LABEL: "score",
    }
    env = {
        "FLEETDECK_MODEL": model,
        "FLEETDECK_VERSION": str(version),
        "FLEETDECK_INPUT": inputs,
        "FLEETDECK_STORE": profile.store.root,
        "FLEETDECK_RUN_ID": name,
    }
    if batch_size is not None:
        env["FLEETDECK_BATCH_SIZE"] = str(batch_size)
    command: tuple[str, ...] = SCORE_COMMAND
    if settings.code:  # the image's start.sh installs the code, then runs training.score
        env["FLEETDECK_TRAINING_CODE"] = settings.code
        env["FLEETDECK_ENTRY_MODULE"] = "training.score"
        command = START_COMMAND
    resources = profile.predictor.resources
    return render(
        "score-job",
        {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {CHANGE_CAUSE: cause, MODEL_URI: model_uri(profile, model, version)},
            "backoff_limit": settings.backoff_limit,
            "active_deadline_seconds": settings.active_deadline_seconds,
            "ttl_seconds_after_finished": settings.ttl_seconds_after_finished,
            "image": profile.images.training,
            "command": list(command),
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "resources": _resources(resources.requests, resources.limits, 0),
        },
    )
