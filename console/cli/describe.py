"""``fleetdeck describe NAME``: one deployment in full, as ``kubectl describe`` shows one.

What is gathered (:class:`Description`) is printed as sections for people and is the data of
``-o json|yaml``; every read goes through the backend interface (the autoscaler where the
backend has the capability) and the profile's model store.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from console.backends.base import Autoscaling, Backend, ConditionInfo, RouteInfo
from console.cli.listings import EVENTS
from console.cli.printing import Output, print_items, print_table
from console.model import (
    AutoscalerInfo,
    EventInfo,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
)
from console.profile import Profile
from console.views.autoscaler import decision_cells
from console.views.fleet_rows import status_text
from console.views.format import age, printable


@dataclass(frozen=True)
class ModelVersionInfo:
    """The served version as the store's manifest describes it ("" and {} when unreadable)."""

    model: str
    version: str
    created: str = ""
    runtime: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""  # why the manifest could not be read


@dataclass(frozen=True)
class Description:
    deployment: ModelDeployment
    model_version: ModelVersionInfo
    revisions: Sequence[RevisionInfo]
    pods: Sequence[PodInfo]
    conditions: Sequence[ConditionInfo]
    events: Sequence[EventInfo]
    autoscaler: AutoscalerInfo | None
    route: RouteInfo | None


def describe_deployment(
    profile: Profile, backend: Backend, namespace: str, name: str
) -> Description | None:
    """Everything about ``namespace/name``; None when there is no such deployment."""
    row = backend.deployment(namespace, name)
    if row is None:
        return None
    autoscaler = backend.autoscaler(namespace, name) if isinstance(backend, Autoscaling) else None
    return Description(
        deployment=row,
        model_version=_model_version(profile, row),
        revisions=backend.history(namespace, name),
        pods=backend.pods(namespace, name),
        conditions=backend.conditions(namespace, name),
        events=backend.events(namespace, name),
        autoscaler=autoscaler,
        route=backend.route(namespace, name),
    )


def _model_version(profile: Profile, row: ModelDeployment) -> ModelVersionInfo:
    from serving.store import ModelStore, StoreError

    try:
        manifest = ModelStore(profile.store.root).manifest(row.model, int(row.version))
    except (StoreError, OSError, ValueError) as exc:
        return ModelVersionInfo(row.model, row.version, error=printable(exc))
    return ModelVersionInfo(
        row.model, row.version, manifest.created, manifest.default_runtime, dict(manifest.metrics)
    )


def print_description(found: Description, output: Output, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    d, version = found.deployment, found.model_version
    fields: list[tuple[str, object]] = [
        ("Name", d.name),
        ("Namespace", d.namespace),
        ("Created", age(d.created) + " ago" if d.created else "-"),
        ("Model", f"{version.model} v{version.version}"),
        ("Model created", version.created or "-"),
        ("Runtime", version.runtime or "-"),
        ("Metrics", _metrics(version)),
        ("Image", d.image or "-"),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(d.labels.items())) or "-"),
        (
            "Replicas",
            f"{d.desired} desired | {d.updated} updated | {d.ready} ready | "
            f"{d.available} available",
        ),
        ("Status", status_text(d)),
        ("Revision", d.revision or "-"),
        ("Route", _route(found.route)),
        ("Autoscaler", _autoscaler(found.autoscaler)),
    ]
    width = max(len(label) for label, _ in fields) + 2
    for label, value in fields:
        out.write(f"{label + ':':<{width}}{printable(value)}\n")
    conditions = [[c.type, c.status, c.reason, c.message] for c in found.conditions]
    _section(out, "Conditions", ["TYPE", "STATUS", "REASON", "MESSAGE"], conditions)
    if found.autoscaler is not None and found.autoscaler.decisions:
        _section(
            out,
            "Scaling decisions",
            ["AGE", "FROM", "TO", "WHY"],
            [decision_cells(d) for d in found.autoscaler.decisions],
        )
    revisions = [[r.number, r.model, r.model_version, r.change_cause] for r in found.revisions]
    _section(out, "Revisions", ["REVISION", "MODEL", "VERSION", "CHANGE-CAUSE"], revisions)
    _section(
        out,
        "Pods",
        ["NAME", "PHASE", "READY", "RESTARTS", "NODE", "REVISION", "AGE", "REASON"],
        [
            [
                p.name,
                p.phase,
                "yes" if p.ready else "no",
                p.restarts,
                p.node or "-",
                p.revision or "-",
                age(p.created),
                p.reason or "-",
            ]
            for p in found.pods
        ],
    )
    out.write("Events:\n")
    if not found.events:
        out.write("  <none>\n")
        return
    shown = io.StringIO()
    print_items(found.events, EVENTS, Output("wide" if output.format == "wide" else "table"), shown)
    out.write(_indented(shown.getvalue()))


def _section(out: TextIO, title: str, headers: list[str], rows: Sequence[Sequence[object]]) -> None:
    out.write(f"{title}:\n")
    if not rows:
        out.write("  <none>\n")
        return
    shown = io.StringIO()
    print_table(headers, rows, shown)
    out.write(_indented(shown.getvalue()))


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _metrics(version: ModelVersionInfo) -> str:
    if version.error:
        return f"unreadable: {version.error}"
    shown = [
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sorted(version.metrics.items())
        if isinstance(v, (int, float, str))
    ]
    return ", ".join(shown) or "-"


def _route(route: RouteInfo | None) -> str:
    if route is None:
        return "<none>"
    hosts = ", ".join(route.hosts) or "*"
    return f"{route.kind} {route.name}: {hosts} {' '.join(route.paths)}".rstrip()


def _autoscaler(info: AutoscalerInfo | None) -> str:
    if info is None:
        return "<none>"
    current = "-" if info.current_replicas is None else info.current_replicas
    desired = "-" if info.desired_replicas is None else info.desired_replicas
    now = f"now {', '.join(info.current)}, " if info.current else ""
    return (
        f"{info.name}: {info.min_replicas}..{info.max_replicas} replicas at "
        f"{', '.join(info.targets) or '-'} ({now}current {current}, desired {desired})"
    )
