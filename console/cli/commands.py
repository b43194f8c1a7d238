"""The CLI's commands: each parses its arguments into a typed request, opens the session,
calls the core (every mutation goes through ``console.core.actions``) and prints."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from console import audit
from console.backends.base import Autoscaling, Backend, LogRequest
from console.batch.runner import ActionSpec
from console.cli import batch as batch_cli
from console.cli import changes as changes_cli
from console.cli.confirm import confirm
from console.cli.errors import ActionFailed, UsageError
from console.cli.listings import DEPLOYMENTS, EVENTS, JOBS, across_clusters
from console.cli.printing import (
    Listing,
    Output,
    colours_wanted,
    dump,
    log_line,
    output_of,
    print_item_line,
    print_items,
    print_json,
    print_json_line,
    print_table,
)
from console.core import actions, guard
from console.core.clusters import (
    ClusterSessions,
    TargetNotFound,
    cluster_order,
    names_clusters,
    open_sessions,
)
from console.core.session import Session, SessionRequest, is_read_only
from console.core.targets import DEPLOYMENT_KINDS, Target, parse_target
from console.model import (
    ActionResult,
    AutoscaleRequest,
    DeploymentState,
    DeployRequest,
    EventInfo,
    ModelDeployment,
    ScoringRequest,
    TrainingJob,
    TrainingRequest,
)
from console.names import InvalidName, check_label, check_subdomain
from console.profile import Profile, load_profile
from console.selectors import SelectorError
from console.views import autoscaler as autoscaler_view
from console.views.format import printable
from training.params import ParamError, parse_grid, parse_param

__all__ = ["ActionFailed", "UsageError", "run"]

WATCH_INTERVAL = 1.0
Handler = Callable[[ClusterSessions, argparse.Namespace], int]
Item = TypeVar("Item")


def run(args: argparse.Namespace) -> int:
    if args.command == "completion":
        from console.cli.completion import print_script

        return print_script(args.shell)
    check_names(args)  # before the profile or a backend: a bad name is never sent anywhere
    profile = load_profile(args.profile)
    if args.command == "models":  # the store: the profile's, or the --cluster's own
        return models(profile.for_cluster(args.cluster) if args.cluster else profile, args)
    if batch_cli.reads_only(args):  # batch list/status/halt: the journals, no cluster needed
        return batch_cli.show(args)
    if args.command == "agent":
        from console.local.manage import agent_command

        return agent_command(profile, args.action, args.json)
    if args.command == "audit":
        return show_audit(args)
    request = session_request(args)
    if guard.is_mutation(args.command):  # before a backend is opened: nothing is sent
        guard.check_read_only(read_only=is_read_only(profile, request), profile=profile.name)
    with open_sessions(profile, request) as fleet:
        try:
            return HANDLERS[args.command](fleet, args)
        except SelectorError as exc:
            raise UsageError(str(exc)) from None
        except TargetNotFound as exc:
            raise ActionFailed(str(exc)) from None


def session_request(args: argparse.Namespace) -> SessionRequest:
    return SessionRequest(
        context=args.context,
        namespace=args.namespace,
        all_namespaces=bool(args.all_namespaces),
        read_only=bool(args.readonly),
        parallel=getattr(args, "max_parallel", None),  # a batch's requests share the pool
        request_timeout=parse_timeout(args.request_timeout),
        cluster=args.cluster,
    )


def parse_timeout(text: str | None) -> float | None:
    """``--request-timeout`` as kubectl takes it: ``0`` (no limit), seconds (``10``) or a
    duration (``10s``, ``1m``); None when not given."""
    if text is None:
        return None
    if text.strip().isdigit():
        return float(text)
    try:
        return audit.parse_since(text).total_seconds()
    except ValueError:
        raise UsageError(
            f"--request-timeout {text!r}: expected 0 (no limit), seconds or a duration "
            "such as 10s or 1m"
        ) from None


# -- names ------------------------------------------------------------------------------------
# Arguments naming a deployment there is (NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME),
# or a list of them, per command; `deploy` names one to create (NAME).
_DEPLOYMENT_NAME = frozenset({"status", "history", "delete", "autoscale", "describe"})
_DEPLOYMENT_NAMES = frozenset({"rollout", "rollback", "restart", "pause", "resume", "scale"})
_MODEL = frozenset({"deploy", "train", "score"})
_DEPLOYMENT_KINDS = DEPLOYMENT_KINDS


def deployment_name(text: str) -> str:
    """A deployment as the user gave it, without ``deployment/`` (``-o name``), every part
    checked (:class:`InvalidName`, exit 2)."""
    return str(parse_target(text))


def _kind_and_name(target: str) -> tuple[str, str]:
    """``logs``' TARGET: ("", POD), ("job", NAME) or ("deploy", what follows it)."""
    kind, slash, name = target.partition("/")
    return (kind, name) if slash else ("", target)


def check_names(args: argparse.Namespace) -> None:
    """Every namespace, deployment, job, pod and model name the user typed, checked as
    Kubernetes (and the store) check them; :class:`InvalidName` (exit 2) names the rule.
    ``deployment/NAME`` is taken for NAME (and rewritten to it)."""
    from serving.store import StoreError, check_model_name

    if getattr(args, "namespace", None) is not None:
        check_label(args.namespace, "namespace")
    command = getattr(args, "command", None)
    if command in _DEPLOYMENT_NAME or (command == "events" and args.name is not None):
        args.name = deployment_name(args.name)
    if command == "deploy":
        args.name = check_label(args.name.removeprefix("deployment/"), "deployment name")
    if command in _DEPLOYMENT_NAMES:
        args.names = [deployment_name(n) for n in args.names]
    if command in _MODEL or (command == "models" and args.model is not None):
        try:
            check_model_name(args.model)
        except StoreError as exc:
            raise InvalidName(str(exc)) from None
    if command == "cancel":
        for job in args.jobs:
            parse_target(job, "job")
    if command == "logs":
        if (args.target is None) == (args.selector is None):
            raise UsageError("logs: give TARGET (POD, job/NAME or deploy/NAME) or -l SELECTOR")
        kind, name = _kind_and_name(args.target or "")
        if kind in _DEPLOYMENT_KINDS:
            deployment_name(name)
        elif kind == "job":
            parse_target(name, "job")
        elif not kind and name:
            check_subdomain(name, "pod name")


# -- reading ----------------------------------------------------------------------------------
def ls(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """Every cluster's deployments (a CLUSTER column when the session spans several)."""

    def read() -> list[ModelDeployment]:
        return fleet.deployments(args.selector)

    listing = across_clusters(DEPLOYMENTS) if fleet.several else DEPLOYMENTS
    if args.watch:
        return watch(fleet, read, listing, output_of(args), key=lambda d: (d.cluster, *d.key))
    print_items(read(), listing, output_of(args))
    return _said_missing(fleet)


def jobs(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    listing = across_clusters(JOBS) if fleet.several else JOBS

    def key(job: TrainingJob) -> Hashable:
        return (job.cluster, job.namespace, job.name)

    if args.watch:
        return watch(fleet, fleet.jobs, listing, output_of(args), key=key)
    print_items(fleet.jobs(), listing, output_of(args))
    return _said_missing(fleet)


def _said_missing(fleet: ClusterSessions) -> int:
    """A read over several clusters shows what answered; each cluster that could not be read
    is said on stderr, and the exit status is 1 (as kubectl's for a partial answer)."""
    for line in fleet.problems():
        print(f"fleetdeck: {printable(line)}", file=sys.stderr)
    return 1 if fleet.unavailable else 0


def _target(fleet: ClusterSessions, text: str, args: argparse.Namespace) -> tuple[Session, Target]:
    """The session of the cluster a deployment is in, and its whole identity."""
    target = fleet.resolve(parse_target(text), args.namespace)
    return fleet.session(target.cluster), target


def watch(
    fleet: ClusterSessions,
    read: Callable[[], Sequence[Item]],
    listing: Listing[Item],
    output: Output,
    *,
    key: Callable[[Item], Hashable],
) -> int:
    """kubectl's ``-w``: the listing once, then a line for each item that changes (a gone
    item: its last line), until Ctrl-C. The clusters' caches say when to look again."""
    changed = threading.Event()
    unsubscribe = fleet.subscribe(changed.set)
    try:
        items = read()
        if output.structured or output.format == "name":  # a stream: one object per change
            widths: list[int] = []
            for item in items:
                print_item_line(item, listing, output, widths)
        else:
            widths = print_items(items, listing, output)
        sys.stdout.flush()
        shown = {key(i): (i, listing.data(i)) for i in items}
        while True:
            changed.wait()
            changed.clear()
            now = {key(i): i for i in read()}
            for k, item in now.items():
                data = listing.data(item)
                if k not in shown or shown[k][1] != data:
                    print_item_line(item, listing, output, widths)
                    shown[k] = (item, data)
            for k in [k for k in shown if k not in now]:
                print_item_line(shown.pop(k)[0], listing, output, widths)
    finally:
        unsubscribe()


def describe(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    from console.cli.describe import describe_deployment, print_description

    session, target = _target(fleet, args.name, args)
    namespace, name = target.namespace, target.name
    found = describe_deployment(session.profile, session.backend, namespace, name)
    if found is None:
        raise ActionFailed(f"deployment {name!r} not found in {_where(fleet, target)}")
    if fleet.several:
        found = dataclasses.replace(
            found, deployment=dataclasses.replace(found.deployment, cluster=target.cluster)
        )
    output = output_of(args)
    listing = across_clusters(DEPLOYMENTS) if fleet.several else DEPLOYMENTS
    if output.structured:
        dump(found, output)
    elif output.format == "name":
        print(printable(listing.qualified_name(found.deployment)))
    else:
        print_description(found, output)
    return 0


def _where(fleet: ClusterSessions, target: Target) -> str:
    """Where a deployment was looked for, as a not-found error says it."""
    if fleet.several:
        return f"namespace {target.namespace} of cluster {target.cluster}"
    return f"namespace {target.namespace}"


def events(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    if args.name is not None:
        session, target = _target(fleet, args.name, args)
        backend = session.backend
        if backend.deployment(target.namespace, target.name) is None:
            raise ActionFailed(f"deployment {target.name!r} not found in {_where(fleet, target)}")
        found = backend.events(target.namespace, target.name)
    else:  # every deployment's, once each (a pod's event is its deployment's alone)
        each = dict.fromkeys(  # in the backend's order (kept for events of the same second)
            _event_in(fleet, cluster, event)
            for cluster, session in fleet.sessions.items()
            for d in session.backend.deployments()
            for event in session.backend.events(d.namespace, d.name)
        )
        found = sorted(each, key=lambda e: e.time.timestamp() if e.time else 0.0)
    print_items(found, EVENTS, output_of(args))
    return _said_missing(fleet) if args.name is None else 0


def _event_in(fleet: ClusterSessions, cluster: str, event: EventInfo) -> EventInfo:
    """An event's object names its cluster when the session spans several."""
    if not fleet.several:
        return event
    return dataclasses.replace(event, object=f"{cluster}/{event.object}")


def _namespace(backend: Backend, args: argparse.Namespace) -> str:
    return str(args.namespace or backend.default_namespace)


def status(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session, target = _target(fleet, args.name, args)
    timeout = None
    if args.timeout is not None:
        if not args.watch:
            raise UsageError("--timeout goes with --watch (-w): how long to follow the rollout")
        timeout = audit.parse_since(args.timeout) if args.timeout.strip() != "0" else None
    return follow_status(
        session.backend,
        target.namespace,
        target.name,
        output=output_of(args),
        watch=args.watch,
        timeout=timeout,
        cluster=target.cluster if fleet.several else "",
    )


def follow_status(
    backend: Backend,
    namespace: str,
    name: str,
    *,
    output: Output,
    watch: bool,
    timeout: timedelta | None = None,
    cluster: str = "",
) -> int:
    """Exit 0 when Available; with ``watch``, follow until it is, fails or is paused (exit 1),
    or ``timeout`` passes (exit 1, as ``kubectl rollout status --timeout``). Without it only a
    failed rollout exits 1."""
    deadline = None if timeout is None else time.monotonic() + timeout.total_seconds()
    first = True
    while True:
        row = backend.deployment(namespace, name)
        if row is None:
            where = f" of cluster {cluster}" if cluster else ""
            raise ActionFailed(f"deployment {name!r} not found in namespace {namespace}{where}")
        if cluster:
            row = dataclasses.replace(row, cluster=cluster)
        if output.format == "json":
            print_json_line(row)  # one object per line
        elif output.format == "yaml":
            print("---")
            dump(row, output)
        else:
            pods = backend.pods(namespace, name)
            problems = ", ".join(f"{p.name}: {p.reason}" for p in pods if p.reason)
            line = (
                (f"{cluster}/{row.namespace}/" if cluster else "")
                + f"{row.name}: {row.state.value} {row.ready}/{row.desired} ready, "
                f"{row.updated} updated, revision {row.revision}"
                + (f" - {row.reason}" if row.reason else "")
                + (f" [{problems}]" if problems else "")
            )
            print(printable(line), flush=True)
            if first:  # once: a --watch follows the rollout, not the autoscaler
                scaling = autoscaler_line(backend, namespace, name)
                if scaling:
                    print(scaling, flush=True)
        first = False
        if row.state is DeploymentState.AVAILABLE:
            return 0
        if row.state in (DeploymentState.FAILED, DeploymentState.PAUSED):
            return 1
        if not watch:
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            raise ActionFailed(
                f"timed out waiting for the rollout of {name} ({row.state.value}); it goes on"
            )
        time.sleep(WATCH_INTERVAL)


def autoscaler_line(backend: Backend, namespace: str, name: str) -> str:
    """``  autoscaler digits (local runtime): ...; last decision 12s ago: 1 → 3 (...)``, or ""
    without one (or when it cannot be read: status is about the rollout)."""
    if not isinstance(backend, Autoscaling):
        return ""
    try:
        info = backend.autoscaler(namespace, name)
    except Exception:  # a status must not fail on the autoscaler's read
        return ""
    if info is None:
        return ""
    line = f"  autoscaler {autoscaler_view.summary(info)}"
    if info.decisions:
        when, before, after, why = autoscaler_view.decision_cells(info.decisions[0])
        line += f"; last decision {when} ago: {before} → {after} ({why})"
    return line


def history(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session, target = _target(fleet, args.name, args)
    backend, namespace, name = session.backend, target.namespace, target.name
    revisions = backend.history(namespace, name)
    if not revisions and backend.deployment(namespace, name) is None:
        raise ActionFailed(f"deployment {name!r} not found in {_where(fleet, target)}")
    output = output_of(args)
    if output.structured:
        dump(revisions, output)
        return 0
    print_table(
        ["REVISION", "MODEL", "VERSION", "CHANGE-CAUSE"],
        [[r.number, r.model, r.model_version, r.change_cause] for r in revisions],
        with_headers=output.headers,
    )
    return 0


def log_pods(backend: Backend, namespace: str, args: argparse.Namespace) -> list[str]:
    """The pods ``logs`` reads: a pod, a job's, a deployment's, or those of every deployment
    ``-l`` matches."""
    if args.selector is not None:
        matched = backend.deployments(args.selector)
        scope = {namespace} if args.namespace else None  # -n narrows -l to one namespace
        return [
            p.name
            for d in matched
            if scope is None or d.namespace in scope
            for p in backend.pods(d.namespace, d.name)
        ]
    kind, name = _kind_and_name(args.target)
    if kind in _DEPLOYMENT_KINDS:
        return [p.name for p in backend.pods(namespace, parse_target(name).name)]
    if kind == "job":
        return backend.job_pods(namespace, name)
    if kind:
        raise UsageError(f"logs of {args.target!r}: give POD, job/NAME or deploy/NAME")
    return [name]


def logs(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    since = _since(args)  # a bad time is bad usage, before anything is read
    kind, name = _kind_and_name(args.target or "")
    if kind in _DEPLOYMENT_KINDS:  # a deployment is found in whichever cluster it is
        session, target = _target(fleet, name, args)
        namespace = target.namespace
    elif kind == "job":  # so is a job (NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME)
        target = fleet.resolve(parse_target(name, "job"), args.namespace, "job")
        session, namespace = fleet.session(target.cluster), target.namespace
        args = argparse.Namespace(**{**vars(args), "target": f"job/{target.name}"})
    else:  # a pod or -l: one cluster's
        session = fleet.only("logs of a pod, a job or -l")
        namespace = _namespace(session.backend, args)
    backend = session.backend
    if args.selector is not None and not args.namespace:
        # A selector may match deployments of several namespaces; one stream reads one.
        spread = {d.namespace for d in backend.deployments(args.selector)}
        if len(spread) > 1:
            raise UsageError(
                f"-l {args.selector!r} matches deployments in {len(spread)} namespaces "
                f"({', '.join(sorted(spread))}): add -n NAMESPACE"
            )
        namespace = next(iter(spread), namespace)
    pods = log_pods(backend, namespace, args)
    if not pods:
        what = args.target or f"-l {args.selector}"
        raise ActionFailed(f"no pods for {what} in namespace {namespace}")
    request = LogRequest(
        pods,
        namespace,
        since=since,
        tail=args.tail,
        follow=args.follow,
        timestamps=args.timestamps,
        previous=args.previous,
        container=args.container,
        all_containers=args.all_containers,
    )
    colours = colours_wanted()
    for line in backend.logs(request):
        print(log_line(line, colours=colours), flush=True)
    return 0


def _since(args: argparse.Namespace) -> timedelta | None:
    if args.since:
        return audit.parse_since(args.since)
    if args.since_time:
        try:
            moment = datetime.fromisoformat(args.since_time.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"--since-time {args.since_time!r}: expected an RFC 3339 time such as "
                "2026-12-04T03:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise UsageError(f"--since-time {args.since_time!r}: give its zone (Z or +01:00)")
        return max(datetime.now(UTC) - moment, timedelta(seconds=1))
    return None


def models(profile: Profile, args: argparse.Namespace) -> int:
    from serving.manifest import Manifest
    from serving.store import ModelStore, StoreError

    # (model, version, its manifest or None, why it is unreadable): one team's hostile or
    # broken manifest is listed as unreadable, never hides the other versions.
    found: list[tuple[str, int, Manifest | None, str]] = []
    try:
        store = ModelStore(profile.store.root)
        names = [args.model] if args.model else store.models()
        for name in names:
            for v in store.versions(name):
                try:
                    found.append((name, v, store.manifest(name, v), ""))
                except (StoreError, OSError) as exc:
                    found.append((name, v, None, printable(exc)))
    except StoreError as exc:
        raise ActionFailed(str(exc)) from None
    output = output_of(args)
    if output.structured:
        dump(
            [
                {"model": name, "version": v, "error": error}
                if m is None
                else {
                    "model": m.model,
                    "version": m.version,
                    "created": m.created,
                    "default_runtime": m.default_runtime,
                    "runtimes": m.runtimes(),
                    "metrics": dict(m.metrics),
                    "labels": list(m.labels),
                }
                for name, v, m, error in found
            ],
            output,
        )
        return 0
    print_table(
        ["MODEL", "VERSION", "CREATED", "RUNTIME", "ACCURACY", "INT8"],
        [
            [name, v, "unreadable", "-", "-", "-"]
            if m is None
            else [
                name,
                v,
                m.created,
                m.default_runtime,
                _metric(m.metrics.get("accuracy")),
                _metric(m.metrics.get("int8_accuracy")),
            ]
            for name, v, m, _ in found
        ],
        with_headers=output.headers,
    )
    for name, v, m, error in found:
        if m is None:  # the reason under the table: it is long, and the columns stay narrow
            print(printable(f"{name} v{v}: unreadable: {error}"))
    return 0


def _metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def show_audit(args: argparse.Namespace) -> int:
    entries = audit.read_audit(audit.parse_since(args.since) if args.since else None)
    output = output_of(args)
    if output.structured:
        dump([e.to_json() for e in entries], output)
    else:
        for entry in entries:
            print(printable(audit.format_entry(entry)))
    return 0


# -- mutations: parsed here, performed by console.core.actions -----------------------------------
def _resolve_targets(fleet: ClusterSessions, args: argparse.Namespace) -> list[Target]:
    """NAMEs (each in whichever cluster it is) or every deployment ``-l`` matches in every
    cluster; :class:`TargetNotFound` and an ambiguous short name come out of here before
    anything is sent."""
    if getattr(args, "selector", None):
        if getattr(args, "names", None):
            raise UsageError("give NAMEs or -l SELECTOR, not both")
        found = [
            Target(cluster, d.namespace, d.name)
            for cluster, session in fleet.sessions.items()
            for d in session.backend.deployments(args.selector)
        ]
        if not found:
            raise ActionFailed(f"no deployments match {args.selector!r}")
        if fleet.unavailable:  # the selector may match there too: nothing half done
            raise ActionFailed(
                f"-l {args.selector!r}: not every cluster can be read "
                f"({'; '.join(fleet.problems())}); nothing was sent"
            )
        return found
    names = getattr(args, "names", None) or ([args.name] if getattr(args, "name", None) else [])
    if not names:
        raise UsageError(f"{args.command}: give NAME... or -l SELECTOR")
    return fleet.resolve_all([parse_target(n) for n in names], args.namespace)


def _shown(fleet: ClusterSessions, target: Target) -> str:
    return str(target) if fleet.several else f"{target.namespace}/{target.name}"


def _by_cluster(targets: Sequence[Target]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Targets grouped by cluster, in the order given (each cluster's own session acts)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for t in targets:
        grouped.setdefault(t.cluster, []).append((t.namespace, t.name))
    return {cluster: tuple(found) for cluster, found in grouped.items()}


def _perform(
    session: Session, request: actions.Request, args: argparse.Namespace, *, cluster: str = ""
) -> actions.Outcome:
    """Send through the core, then print what came back; the audit is the core's. With
    ``cluster`` (a session over several) each result names it."""
    outcome = actions.perform(session, request, dry_run=bool(args.dry_run))
    if outcome.audit_error:  # the change is made: show it, and say the record is missing
        print(f"fleetdeck: warning: {outcome.audit_error}", file=sys.stderr)
    _print_results([_result_in(cluster, r) for r in outcome.results], args)
    return outcome


def _print_results(results: list[ActionResult], args: argparse.Namespace) -> None:
    """One line per result (and its changes), or the list as JSON."""
    if getattr(args, "json", False):
        if getattr(args, "wait", False):  # status lines follow: keep one JSON object per line
            print_json_line(results)
        else:
            print_json(results)
    else:
        for result in results:
            mark = "ok" if result.ok else "FAILED"
            print(printable(f"{result.target}: {mark}: {result.message}"))
            for change in result.changes:
                print(f"    {printable(change)}")


def _result_in(cluster: str, result: ActionResult) -> ActionResult:
    return dataclasses.replace(result, target=f"{cluster}/{result.target}") if cluster else result


def _exit(outcome: actions.Outcome) -> int:
    return 0 if outcome.ok else 1


def _spec(args: argparse.Namespace) -> ActionSpec:
    """The action on deployments that ``args`` describes."""
    if args.command == "rollout":
        return ActionSpec("rollout", version=args.version, verify=not args.no_verify)
    if args.command == "rollback":
        return ActionSpec("rollback", to_revision=args.to_revision)
    if args.command == "scale":
        return ActionSpec("scale", replicas=args.replicas)
    return ActionSpec(args.command)


def on_targets(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """rollout (without waves), rollback, restart, pause, resume, scale, delete: one result
    and one audit line per target, each sent by its own cluster's session (its read-only flag,
    its RBAC, its audit lines naming it). JSON: one list of every cluster's results."""
    spec = _spec(args)
    targets = _resolve_targets(fleet, args)
    confirm(
        args.command,
        [_shown(fleet, t) for t in targets],
        yes=bool(getattr(args, "yes", False)),
        dry_run=bool(args.dry_run),
    )
    grouped = _by_cluster(targets)
    if len(grouped) == 1:
        [(cluster, found)] = grouped.items()
        outcome = _perform(
            fleet.session(cluster),
            actions.OnTargets(spec, found),
            args,
            cluster=cluster if fleet.several else "",
        )
        return _exit(outcome)
    ok = True
    collected: list[ActionResult] = []
    as_json = bool(getattr(args, "json", False))
    for cluster, found in grouped.items():
        session = fleet.session(cluster)
        try:
            outcome = actions.perform(
                session, actions.OnTargets(spec, found), dry_run=bool(args.dry_run)
            )
        except guard.Refusal as exc:  # this cluster refuses (read-only, RBAC): the rest go on
            ok = False
            refused = [ActionResult(f"{cluster}/{ns}/{n}", False, str(exc)) for ns, n in found]
            collected += refused
            if not as_json:
                for result in refused:
                    print(printable(f"{result.target}: FAILED: {result.message}"))
            continue
        if outcome.audit_error:
            print(f"fleetdeck: warning: {outcome.audit_error}", file=sys.stderr)
        ok = ok and outcome.ok
        results = [_result_in(cluster, r) for r in outcome.results]
        collected += results
        if not as_json:
            for result in results:
                mark = "ok" if result.ok else "FAILED"
                print(printable(f"{result.target}: {mark}: {result.message}"), flush=True)
                for change in result.changes:
                    print(f"    {printable(change)}")
    if as_json:
        print_json(collected)
    return 0 if ok else 1


def rollout(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    if not batch_cli.wants_waves(args):
        return on_targets(fleet, args)
    resolved = _resolve_targets(fleet, args)
    options = batch_cli.wave_options(args)
    order: list[str] | None = None
    if names_clusters(args.waves):  # --waves canary,eu-west,*: clusters in that order
        order = cluster_order(args.waves, [*fleet.sessions, *fleet.unavailable])
        options = dataclasses.replace(options, waves=None)  # each cluster's own waves
    if args.wave_by == "cluster" or order is not None:
        return batch_cli.rollout_by_cluster(
            fleet,
            _spec(args),
            resolved,
            options,
            dry_run=bool(args.dry_run),
            as_json=bool(args.json),
            yes=bool(args.yes),
            order=order,
        )
    clusters = {t.cluster for t in resolved}
    if len(clusters) > 1:
        raise UsageError(
            f"the targets are in {len(clusters)} clusters ({', '.join(sorted(clusters))}): "
            "add --wave-by cluster to roll out cluster after cluster"
        )
    session = fleet.session(clusters.pop())
    targets = [(t.namespace, t.name) for t in resolved]
    return batch_cli.rollout_in_waves(
        session,
        _spec(args),
        targets,
        batch_cli.wave_options(args),
        dry_run=bool(args.dry_run),
        as_json=bool(args.json),
        yes=bool(args.yes),
    )


def deploy(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session = fleet.only("deploy")
    request = DeployRequest(
        args.name, args.model, args.version, args.namespace, args.replicas, args.gpus
    )
    outcome = _perform(session, actions.Deploy(request, verify=not args.no_verify), args)
    if outcome.ok and args.wait and not args.dry_run:
        backend = session.backend
        namespace = request.namespace or backend.default_namespace
        _wait_until_cached(backend, namespace, args.name)
        output = Output("json" if args.json else "table")
        return follow_status(backend, namespace, args.name, output=output, watch=True)
    return _exit(outcome)


def _wait_until_cached(backend: Backend, namespace: str, name: str, timeout: float = 30.0) -> None:
    """The watch delivers what was just created a moment later; wait for it (bounded)."""
    deadline = time.monotonic() + timeout
    while backend.deployment(namespace, name) is None:
        if time.monotonic() > deadline:
            raise ActionFailed(
                f"{name} was created but did not show up in the cache within "
                f"{timeout:.0f} s; check with `fleetdeck status {name}`"
            )
        time.sleep(0.1)


def train(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session = fleet.only("train")
    try:
        params = dict(parse_param(p) for p in args.param)
        grid = {key: tuple(values) for key, values in (parse_grid(g) for g in args.grid)}
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    request = TrainingRequest(
        args.model, args.data, args.namespace, args.gpus, args.epochs, params, grid
    )
    outcome = _perform(session, actions.Train(request), args)
    if not outcome.ok or args.dry_run or not args.follow:
        return _exit(outcome)
    return _follow_jobs(session.backend, [r.target for r in outcome.results])


def score(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session = fleet.only("score")
    if args.version < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise UsageError("--version and --batch-size must be 1 or more")
    request = ScoringRequest(args.model, args.version, args.input, args.namespace, args.batch_size)
    outcome = _perform(session, actions.Score(request, verify=not args.no_verify), args)
    if not outcome.ok or args.dry_run or not args.follow:
        return _exit(outcome)
    return _follow_jobs(session.backend, [r.target for r in outcome.results])


def autoscale(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    session, target = _target(fleet, args.name, args)
    request = AutoscaleRequest(
        target.name,
        args.min_replicas,
        args.max_replicas,
        args.cpu,
        args.rps_per_pod,
        args.scale_down_seconds,
    )
    cluster = target.cluster if fleet.several else ""
    try:
        outcome = _perform(
            session, actions.Autoscale(target.namespace, request), args, cluster=cluster
        )
        return _exit(outcome)
    except actions.Unsupported as exc:
        raise ActionFailed(str(exc)) from None


def cancel(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """Jobs by NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME, found in whichever cluster they
    are (a short name must be in one place); each cluster's and namespace's sent together."""
    found = [fleet.resolve(parse_target(n, "job"), args.namespace, "job") for n in args.jobs]
    shown = [str(t) if fleet.several else f"{t.namespace}/{t.name}" for t in found]
    confirm("cancel", shown, yes=args.yes, dry_run=args.dry_run)
    groups: dict[tuple[str, str], list[str]] = {}
    for target in found:
        groups.setdefault((target.cluster, target.namespace), []).append(target.name)
    results: list[ActionResult] = []
    for (cluster, namespace), jobs in groups.items():
        request = actions.Cancel(namespace, tuple(jobs))
        outcome = actions.perform(fleet.session(cluster), request, dry_run=bool(args.dry_run))
        if outcome.audit_error:  # the change is made: show it, and say the record is missing
            print(f"fleetdeck: warning: {outcome.audit_error}", file=sys.stderr)
        results += [_result_in(cluster if fleet.several else "", r) for r in outcome.results]
    _print_results(results, args)  # one list, however many clusters and namespaces
    return 0 if all(r.ok for r in results) else 1


def _follow_jobs(backend: Backend, targets: list[str], timeout: float = 600.0) -> int:
    """Stream the new jobs' logs (merged, prefixed) once their pods exist; exit 1 if any fails."""
    namespace = targets[0].split("/", 1)[0]
    names = [t.split("/", 1)[1] for t in targets]
    deadline = time.monotonic() + timeout
    pods: list[str] = []
    while time.monotonic() < deadline:
        pods = [pod for name in names for pod in backend.job_pods(namespace, name)]
        running = {j.name: j for j in backend.jobs() if j.namespace == namespace}
        if len(pods) >= len(names) and all(running.get(n) and running[n].node for n in names):
            break
        waiting = [
            f"{n}: {running[n].pending_reason}"
            for n in names
            if running.get(n) and running[n].pending_reason
        ]
        if waiting:
            print(printable("waiting: " + "; ".join(waiting)), file=sys.stderr, flush=True)
        time.sleep(2.0)
    else:
        raise ActionFailed(f"the jobs did not start within {timeout:.0f} s")
    for line in backend.logs(LogRequest(pods, namespace, follow=True)):
        print(line, flush=True)
    final = {j.name: j for j in backend.jobs() if j.namespace == namespace}
    failed = [n for n in names if final.get(n) and final[n].phase.value == "Failed"]
    return 1 if failed else 0


def top(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    from console.cli.top import top as show_top

    return show_top(fleet, args)


def watch_slo(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    from console.cli.watch import watch as watch_fleet

    return watch_fleet(fleet, args)


HANDLERS: dict[str, Handler] = {
    "ls": ls,
    "describe": describe,
    "events": events,
    "status": status,
    "history": history,
    "jobs": jobs,
    "logs": logs,
    "top": top,
    "watch": watch_slo,
    "changes": changes_cli.changes,
    "undo": changes_cli.undo_change,
    "deploy": deploy,
    "rollout": rollout,
    "rollback": on_targets,
    "restart": on_targets,
    "pause": on_targets,
    "resume": on_targets,
    "scale": on_targets,
    "delete": on_targets,
    "train": train,
    "score": score,
    "cancel": cancel,
    "autoscale": autoscale,
    "batch": lambda fleet, args: batch_cli.resume_or_abort(
        fleet, args.batch_command, args.id, as_json=args.json
    ),
}
