"""``fleetdeck changes`` and ``fleetdeck undo CHANGE_ID``: the timeline of what changed in the
session's clusters, and the undo of one change (preview, confirmation, the usual checks, the
audit line naming the change)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from console.audit import parse_since
from console.backends.base import Backend
from console.changes.model import Change
from console.changes.sources import Reader, StoreVersions
from console.changes.timeline import timeline
from console.changes.undo import UndoPlan, UndoRefused, find, plan_undo, undo
from console.cli import batch as batch_cli
from console.cli.errors import ActionFailed, UsageError
from console.cli.printing import Output, dump, print_json, print_table
from console.core.clusters import ClusterSessions
from console.core.session import Session
from console.model import ActionResult, ModelDeployment
from console.views.changes import HEADERS, as_json, build_row
from console.views.format import printable


def _backends(fleet: ClusterSessions) -> dict[str, Backend]:
    """Each open cluster's backend by the name its rows carry ("" on one cluster)."""
    if not fleet.several:
        return {"": fleet.only("changes").backend}
    return {name: session.backend for name, session in fleet.sessions.items()}


def _session(fleet: ClusterSessions, cluster: str) -> Session:
    return fleet.only("undo") if not cluster else fleet.session(cluster)


def read_changes(
    fleet: ClusterSessions, *, store: bool = True, say_clusters: bool = True
) -> list[Change]:
    """The session's timeline, newest first; what could not be read is said on stderr
    (the clusters that could not be opened too, unless ``say_clusters`` is False)."""
    for line in fleet.problems() if say_clusters else ():
        print(f"fleetdeck: {printable(line)}", file=sys.stderr)
    profile = fleet.profile
    reader = Reader(
        profile.name,
        only_cluster="" if fleet.several else next(iter(fleet.sessions)),
        store=StoreVersions(profile.store.root) if store else None,
        contexts={
            ("" if not fleet.several else name): session.audit.context
            for name, session in fleet.sessions.items()
        },
    )
    sources, problems = reader.read(_backends(fleet))
    for line in problems:
        print(f"fleetdeck: {printable(line)} (its changes are left out)", file=sys.stderr)
    return timeline(sources)


def changes(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    found = read_changes(fleet, store=args.selector is None)
    if since is not None:
        cutoff = datetime.now(UTC) - since
        found = [c for c in found if c.time >= cutoff]
    if args.selector is not None:
        chosen = {(d.cluster, d.namespace, d.name) for d in fleet.deployments(args.selector)}
        found = [
            c for c in found if any((a.cluster, a.namespace, a.name) in chosen for a in c.affected)
        ]
    rows = [build_row(c, None) for c in found]
    output = Output(args.output, headers=not args.no_headers)
    if output.structured:
        dump([as_json(r) for r in rows], output)
        return 0
    if output.format == "name":
        for row in rows:
            print(f"change/{row.change.id}")
        return 0
    shown = [h for h in HEADERS if h != "EFFECT"]  # the deck keeps the metrics history
    index = [HEADERS.index(h) for h in shown]
    print_table(shown, [[r.cells[i] for i in index] for r in rows], with_headers=output.headers)
    return 0


def undo_change(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    backends = _backends(fleet)

    def current(cluster: str, key: tuple[str, str]) -> ModelDeployment | None:
        return backends[cluster].deployment(*key)

    try:
        change = _find(fleet, args.change)
        plan = plan_undo(change, current)
    except UndoRefused as exc:
        raise ActionFailed(str(exc)) from None
    for line in plan.lines():
        print(printable(line), file=sys.stderr)
    if plan.batch:
        if not args.dry_run:
            _confirm(plan, yes=bool(args.yes))
            return batch_cli.resume_or_abort(fleet, "abort", plan.batch, as_json=bool(args.json))
        print(f"dry run: `fleetdeck batch abort {plan.batch}` would roll it back", file=sys.stderr)
        return 0
    if not args.dry_run:
        _confirm(plan, yes=bool(args.yes))
    outcomes, late = undo(
        plan, lambda cluster: _session(fleet, cluster), current, dry_run=bool(args.dry_run)
    )
    results: list[ActionResult] = []
    for cluster, outcome in zip(plan.clusters, outcomes, strict=True):
        if outcome.audit_error:
            print(f"fleetdeck: warning: {outcome.audit_error}", file=sys.stderr)
        prefix = f"{cluster}/" if cluster else ""
        results += [
            ActionResult(f"{prefix}{r.target}", r.ok, r.message, r.dry_run, r.changes)
            for r in outcome.results
        ]
    results += [
        ActionResult(a.where, False, f"left as it is: {why}", bool(args.dry_run))
        for a, why in [*plan.refused, *late]
    ]
    if args.json:
        print_json(results)
    else:
        for result in results:
            mark = "ok" if result.ok else "FAILED"
            print(printable(f"{result.target}: {mark}: {result.message}"))
    return 0 if all(r.ok for r in results) else 1


def _find(fleet: ClusterSessions, wanted: str) -> Change:
    """The change to undo; the store (a read of every manifest) only when the id is not a
    deployment's change."""
    try:
        return find(read_changes(fleet, store=False), wanted)
    except UndoRefused as exc:
        if not str(exc).startswith("no change"):
            raise
    return find(read_changes(fleet, say_clusters=False), wanted)  # said the first time


def _confirm(plan: UndoPlan, *, yes: bool) -> None:
    """An undo always asks (or takes ``--yes``): it changes what is serving."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"undo {plan.change.id} needs confirmation: add --yes")
    try:
        answer = input(f"type {plan.change.id} to undo it: ").strip()
    except EOFError:
        answer = ""
    if answer != plan.change.id:
        raise ActionFailed("undo cancelled; nothing was sent")
