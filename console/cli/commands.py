"""The CLI's commands: each parses its arguments into a typed request, opens the session,
calls the core (every mutation goes through ``console.core.actions``) and prints."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from console import audit
from console.backends.base import Backend, LogRequest
from console.batch.runner import ActionSpec
from console.cli import batch as batch_cli
from console.cli.confirm import confirm
from console.cli.errors import ActionFailed, UsageError
from console.cli.listings import DEPLOYMENTS, EVENTS, JOBS
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
from console.core.session import Session, SessionRequest, is_read_only, open_session
from console.model import (
    AutoscaleRequest,
    DeploymentState,
    DeployRequest,
    ModelDeployment,
    ScoringRequest,
    TrainingRequest,
)
from console.names import InvalidName, check_label, check_subdomain
from console.profile import Profile, load_profile
from console.selectors import SelectorError
from console.views.format import printable
from training.params import ParamError, parse_grid, parse_param

__all__ = ["ActionFailed", "UsageError", "run"]

WATCH_INTERVAL = 1.0
Handler = Callable[[Session, argparse.Namespace], int]
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
    with open_session(profile, request) as session:
        try:
            return HANDLERS[args.command](session, args)
        except SelectorError as exc:
            raise UsageError(str(exc)) from None


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
# Arguments holding one deployment name (or a list of them), per command.
_DEPLOYMENT_NAME = frozenset({"status", "history", "delete", "deploy", "autoscale", "describe"})
_DEPLOYMENT_NAMES = frozenset({"rollout", "rollback", "restart", "pause", "resume", "scale"})
_MODEL = frozenset({"deploy", "train", "score"})
# What `-o name` prints before a deployment's name, and what kubectl also accepts.
_DEPLOYMENT_KINDS = ("deployment", "deploy", "deployments")


def deployment_name(text: str) -> str:
    """A deployment as the user gave it: ``NAME`` or ``deployment/NAME`` (``-o name``)."""
    kind, slash, name = text.rpartition("/")
    if slash and kind.lower() in _DEPLOYMENT_KINDS:
        return name
    return text


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
        check_label(args.name, "deployment name")
    if command in _DEPLOYMENT_NAMES:
        args.names = [deployment_name(n) for n in args.names]
        for name in args.names:
            check_label(name, "deployment name")
    if command in _MODEL or (command == "models" and args.model is not None):
        try:
            check_model_name(args.model)
        except StoreError as exc:
            raise InvalidName(str(exc)) from None
    if command == "cancel":
        for job in args.jobs:
            check_label(job.removeprefix("job/"), "job name")
    if command == "logs":
        if (args.target is None) == (args.selector is None):
            raise UsageError("logs: give TARGET (POD, job/NAME or deploy/NAME) or -l SELECTOR")
        kind, _, name = (args.target or "").rpartition("/")
        if kind in _DEPLOYMENT_KINDS:
            check_label(name, "deployment name")
        elif kind == "job":
            check_label(name, "job name")
        elif not kind and name:
            check_subdomain(name, "pod name")


# -- reading ----------------------------------------------------------------------------------
def ls(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend

    def read() -> list[ModelDeployment]:
        return backend.deployments(args.selector)

    if args.watch:
        return watch(backend, read, DEPLOYMENTS, output_of(args), key=lambda d: d.key)
    print_items(read(), DEPLOYMENTS, output_of(args))
    return 0


def jobs(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    if args.watch:
        return watch(
            backend, backend.jobs, JOBS, output_of(args), key=lambda j: (j.namespace, j.name)
        )
    print_items(backend.jobs(), JOBS, output_of(args))
    return 0


def watch(
    backend: Backend,
    read: Callable[[], Sequence[Item]],
    listing: Listing[Item],
    output: Output,
    *,
    key: Callable[[Item], Hashable],
) -> int:
    """kubectl's ``-w``: the listing once, then a line for each item that changes (a gone
    item: its last line), until Ctrl-C. The backend's cache says when to look again."""
    changed = threading.Event()
    unsubscribe = backend.subscribe(changed.set)
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


def describe(session: Session, args: argparse.Namespace) -> int:
    from console.cli.describe import describe_deployment, print_description

    backend = session.backend
    namespace = _namespace(backend, args)
    found = describe_deployment(session.profile, backend, namespace, args.name)
    if found is None:
        raise ActionFailed(f"deployment {args.name!r} not found in namespace {namespace}")
    output = output_of(args)
    if output.structured:
        dump(found, output)
    elif output.format == "name":
        print(printable(DEPLOYMENTS.qualified_name(found.deployment)))
    else:
        print_description(found, output)
    return 0


def events(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    if args.name is not None:
        namespace = _namespace(backend, args)
        if backend.deployment(namespace, args.name) is None:
            raise ActionFailed(f"deployment {args.name!r} not found in namespace {namespace}")
        found = backend.events(namespace, args.name)
    else:  # every deployment's, once each (a pod's event is its deployment's alone)
        each = dict.fromkeys(  # in the backend's order (kept for events of the same second)
            e for d in backend.deployments() for e in backend.events(d.namespace, d.name)
        )
        found = sorted(each, key=lambda e: e.time.timestamp() if e.time else 0.0)
    print_items(found, EVENTS, output_of(args))
    return 0


def _namespace(backend: Backend, args: argparse.Namespace) -> str:
    return str(args.namespace or backend.default_namespace)


def status(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    namespace = _namespace(backend, args)
    timeout = None
    if args.timeout is not None:
        if not args.watch:
            raise UsageError("--timeout goes with --watch (-w): how long to follow the rollout")
        timeout = audit.parse_since(args.timeout) if args.timeout.strip() != "0" else None
    return follow_status(
        backend, namespace, args.name, output=output_of(args), watch=args.watch, timeout=timeout
    )


def follow_status(
    backend: Backend,
    namespace: str,
    name: str,
    *,
    output: Output,
    watch: bool,
    timeout: timedelta | None = None,
) -> int:
    """Exit 0 when Available; with ``watch``, follow until it is, fails or is paused (exit 1),
    or ``timeout`` passes (exit 1, as ``kubectl rollout status --timeout``). Without it only a
    failed rollout exits 1."""
    deadline = None if timeout is None else time.monotonic() + timeout.total_seconds()
    while True:
        row = backend.deployment(namespace, name)
        if row is None:
            raise ActionFailed(f"deployment {name!r} not found in namespace {namespace}")
        if output.format == "json":
            print_json_line(row)  # one object per line
        elif output.format == "yaml":
            print("---")
            dump(row, output)
        else:
            pods = backend.pods(namespace, name)
            problems = ", ".join(f"{p.name}: {p.reason}" for p in pods if p.reason)
            line = (
                f"{row.name}: {row.state.value} {row.ready}/{row.desired} ready, "
                f"{row.updated} updated, revision {row.revision}"
                + (f" - {row.reason}" if row.reason else "")
                + (f" [{problems}]" if problems else "")
            )
            print(printable(line), flush=True)
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


def history(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    namespace = _namespace(backend, args)
    revisions = backend.history(namespace, args.name)
    if not revisions and backend.deployment(namespace, args.name) is None:
        raise ActionFailed(f"deployment {args.name!r} not found in namespace {namespace}")
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
    kind, _, name = args.target.rpartition("/")
    if kind in _DEPLOYMENT_KINDS:
        return [p.name for p in backend.pods(namespace, name)]
    if kind == "job":
        return backend.job_pods(namespace, name)
    if kind:
        raise UsageError(f"logs of {args.target!r}: give POD, job/NAME or deploy/NAME")
    return [name]


def logs(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    since = _since(args)  # a bad time is bad usage, before anything is read
    namespace = _namespace(backend, args)
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
def _resolve_targets(backend: Backend, args: argparse.Namespace) -> list[tuple[str, str]]:
    namespace = _namespace(backend, args)
    if getattr(args, "selector", None):
        if getattr(args, "names", None):
            raise UsageError("give NAMEs or -l SELECTOR, not both")
        rows = backend.deployments(args.selector)
        if not rows:
            raise ActionFailed(f"no deployments match {args.selector!r}")
        return [(d.namespace, d.name) for d in rows]
    names = getattr(args, "names", None) or ([args.name] if getattr(args, "name", None) else [])
    if not names:
        raise UsageError(f"{args.command}: give NAME... or -l SELECTOR")
    return [(namespace, name) for name in names]


def _perform(
    session: Session, request: actions.Request, args: argparse.Namespace
) -> actions.Outcome:
    """Send through the core, then print what came back; the audit is the core's."""
    outcome = actions.perform(session, request, dry_run=bool(args.dry_run))
    if outcome.audit_error:  # the change is made: show it, and say the record is missing
        print(f"fleetdeck: warning: {outcome.audit_error}", file=sys.stderr)
    if getattr(args, "json", False):
        if getattr(args, "wait", False):  # status lines follow: keep one JSON object per line
            print_json_line(list(outcome.results))
        else:
            print_json(list(outcome.results))
    else:
        for result in outcome.results:
            mark = "ok" if result.ok else "FAILED"
            print(printable(f"{result.target}: {mark}: {result.message}"))
            for change in result.changes:
                print(f"    {printable(change)}")
    return outcome


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


def on_targets(session: Session, args: argparse.Namespace) -> int:
    """rollout (without waves), rollback, restart, pause, resume, scale, delete: one result
    and one audit line per target."""
    spec = _spec(args)
    targets = _resolve_targets(session.backend, args)
    confirm(
        args.command,
        [f"{ns}/{name}" for ns, name in targets],
        yes=bool(getattr(args, "yes", False)),
        dry_run=bool(args.dry_run),
    )
    return _exit(_perform(session, actions.OnTargets(spec, tuple(targets)), args))


def rollout(session: Session, args: argparse.Namespace) -> int:
    if not batch_cli.wants_waves(args):
        return on_targets(session, args)
    targets = _resolve_targets(session.backend, args)
    return batch_cli.rollout_in_waves(
        session,
        _spec(args),
        targets,
        batch_cli.wave_options(args),
        dry_run=bool(args.dry_run),
        as_json=bool(args.json),
        yes=bool(args.yes),
    )


def deploy(session: Session, args: argparse.Namespace) -> int:
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


def train(session: Session, args: argparse.Namespace) -> int:
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


def score(session: Session, args: argparse.Namespace) -> int:
    if args.version < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise UsageError("--version and --batch-size must be 1 or more")
    request = ScoringRequest(args.model, args.version, args.input, args.namespace, args.batch_size)
    outcome = _perform(session, actions.Score(request, verify=not args.no_verify), args)
    if not outcome.ok or args.dry_run or not args.follow:
        return _exit(outcome)
    return _follow_jobs(session.backend, [r.target for r in outcome.results])


def autoscale(session: Session, args: argparse.Namespace) -> int:
    request = AutoscaleRequest(
        args.name, args.min_replicas, args.max_replicas, args.cpu, args.rps_per_pod
    )
    namespace = _namespace(session.backend, args)
    try:
        return _exit(_perform(session, actions.Autoscale(namespace, request), args))
    except actions.Unsupported as exc:
        raise ActionFailed(str(exc)) from None


def cancel(session: Session, args: argparse.Namespace) -> int:
    namespace = _namespace(session.backend, args)
    names = tuple(n.removeprefix("job/") for n in args.jobs)
    confirm("cancel", [f"{namespace}/{n}" for n in names], yes=args.yes, dry_run=args.dry_run)
    return _exit(_perform(session, actions.Cancel(namespace, names), args))


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


def top(session: Session, args: argparse.Namespace) -> int:
    """The metrics of the profile's deployments (or -l's); rates from a scrape source need two
    reads, so a one-shot run reads twice one interval apart."""
    from console.metrics import collector_for, report

    profile, backend = session.profile, session.backend
    collector = collector_for(profile, backend)
    try:
        keys = {d.key for d in backend.deployments(args.selector)}
        collector.set_wanted(keys)
        collector.refresh()
        while True:
            time.sleep(profile.metrics.interval_seconds)
            collector.refresh()
            if collector.error and not args.watch:
                raise ActionFailed(f"no metrics: {collector.error}")
            snapshot = {k: m for k, m in collector.snapshot().items() if k in keys}
            fleet = collector.fleet()
            if args.json:
                found = report.as_json(
                    snapshot,
                    fleet,
                    source=collector.source.name,
                    window_s=collector.window_s,
                    error=collector.error,
                )
                (print_json_line if args.watch else print_json)(found)
            else:
                print_table(report.HEADERS, report.table_rows(snapshot, fleet))
                failures = report.problems(snapshot)
                for line in failures + ([collector.error] if collector.error else []):
                    print(f"  ! {printable(line)}")
            sys.stdout.flush()
            if not args.watch:
                return 0
            if not args.json:
                print()
            keys = {d.key for d in backend.deployments(args.selector)}
            collector.set_wanted(keys)
    finally:
        collector.stop()


HANDLERS: dict[str, Handler] = {
    "ls": ls,
    "describe": describe,
    "events": events,
    "status": status,
    "history": history,
    "jobs": jobs,
    "logs": logs,
    "top": top,
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
    "batch": lambda session, args: batch_cli.resume_or_abort(
        session, args.batch_command, args.id, as_json=args.json
    ),
}
