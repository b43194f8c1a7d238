"""The CLI's listings: the columns of deployments, jobs and events (``-o wide`` adds the
wide ones) and what ``-o name`` calls each item."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from console.cli.printing import Column, Listing
from console.model import EventInfo, ModelDeployment, TrainingJob
from console.views.fleet_rows import status_text
from console.views.format import age

DEPLOYMENTS: Listing[ModelDeployment] = Listing(
    [
        Column("NAMESPACE", lambda d: d.namespace),
        Column("NAME", lambda d: d.name),
        Column("MODEL", lambda d: d.model),
        Column("VERSION", lambda d: d.version),
        Column("READY", lambda d: f"{d.ready}/{d.desired}"),
        Column("UP-TO-DATE", lambda d: d.updated, wide=True),
        Column("AVAILABLE", lambda d: d.available, wide=True),
        Column("STATUS", status_text),  # the deck's words
        Column("REVISION", lambda d: d.revision or "-"),
        Column("AGE", lambda d: age(d.created)),
        Column("IMAGE", lambda d: d.image or "-", wide=True),
        Column(
            "LABELS",
            lambda d: ",".join(f"{k}={v}" for k, v in sorted(d.labels.items())) or "-",
            wide=True,
        ),
    ],
    kind="deployment",
    name=lambda d: d.name,
)

JOBS: Listing[TrainingJob] = Listing(
    [
        Column("NAMESPACE", lambda j: j.namespace),
        Column("NAME", lambda j: j.name),
        Column("KIND", lambda j: j.kind),
        Column("MODEL", lambda j: j.model),
        Column("PHASE", lambda j: j.phase.value),
        Column("GPUS", lambda j: j.gpus),
        Column("NODE", lambda j: j.node or "-"),
        Column("AGE", lambda j: age(j.started)),
        Column("SWEEP", lambda j: j.sweep or "-", wide=True),
        Column("TRIAL", lambda j: "-" if j.trial is None else j.trial, wide=True),
        Column("REASON", lambda j: j.pending_reason),
    ],
    kind="job",
    name=lambda j: j.name,
)

EVENTS: Listing[EventInfo] = Listing(
    [
        Column("LAST SEEN", lambda e: age(e.time)),
        Column("TYPE", lambda e: e.kind),
        Column("REASON", lambda e: e.reason),
        Column("OBJECT", lambda e: e.object),
        Column("COUNT", lambda e: e.count, wide=True),
        Column("MESSAGE", lambda e: e.message),
    ]
)


InCluster = TypeVar("InCluster", ModelDeployment, TrainingJob)


def across_clusters(listing: Listing[InCluster]) -> Listing[InCluster]:
    """The listing for a session over several clusters: CLUSTER first, and ``-o name`` naming
    ``deployment/CLUSTER/NAMESPACE/NAME`` (what every command takes back)."""
    columns: list[Column[InCluster]] = [Column("CLUSTER", lambda i: i.cluster)]
    columns.extend(listing.columns)
    return dataclasses.replace(
        listing,
        columns=columns,
        name=lambda i: f"{i.cluster}/{i.namespace}/{i.name}",
    )
