"""The CLI's commands: each parses its arguments into a typed request, opens the session,
calls the core (every mutation goes through ``console.core.actions``) and prints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from console import audit
from console.backends.base import Backend, LogRequest
from console.batch.runner import ActionSpec
from console.cli import batch as batch_cli
from console.cli.confirm import confirm
from console.cli.errors import ActionFailed, UsageError
from console.cli.printing import print_json, print_table
from console.core import actions, guard
from console.core.session import Session, SessionRequest, is_read_only, open_session
from console.model import (
    AutoscaleRequest,
    DeploymentState,
    DeployRequest,
    ScoringRequest,
    TrainingRequest,
)
from console.names import InvalidName, check_label, check_subdomain
from console.profile import Profile, load_profile
from console.selectors import SelectorError
from console.views.format import age, printable, to_json
from training.params import ParamError, parse_grid, parse_param

__all__ = ["ActionFailed", "UsageError", "run"]

WATCH_INTERVAL = 1.0
Handler = Callable[[Session, argparse.Namespace], int]


def run(args: argparse.Namespace) -> int:
    check_names(args)  # before the profile or a backend: a bad name is never sent anywhere
    profile = load_profile(args.profile)
    if args.command == "models":
        return models(profile, args)
    if args.command == "audit":
        return show_audit(args)
    if batch_cli.reads_only(args):  # batch list/status/halt: the journals, no cluster needed
        return batch_cli.show(args)
    if args.command == "agent":
        from console.local.manage import agent_command

        return agent_command(profile, args.action, args.json)
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
    )


# -- names ------------------------------------------------------------------------------------
# Arguments holding one deployment name (or a list of them), per command.
_DEPLOYMENT_NAME = frozenset({"status", "history", "scale", "delete", "deploy", "autoscale"})
_DEPLOYMENT_NAMES = frozenset({"rollout", "rollback", "restart", "pause", "resume"})
_MODEL = frozenset({"deploy", "train", "score"})


def check_names(args: argparse.Namespace) -> None:
    """Every namespace, deployment, job, pod and model name the user typed, checked as
    Kubernetes (and the store) check them; :class:`InvalidName` (exit 2) names the rule."""
    from serving.store import StoreError, check_model_name

    if getattr(args, "namespace", None) is not None:
        check_label(args.namespace, "namespace")
    command = getattr(args, "command", None)
    if command in _DEPLOYMENT_NAME:
        check_label(args.name, "deployment name")
    if command in _DEPLOYMENT_NAMES:
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
        kind, _, name = args.target.rpartition("/")
        if kind in ("deploy", "deployment"):
            check_label(name, "deployment name")
        elif kind == "job":
            check_label(name, "job name")
        elif not kind:
            check_subdomain(name, "pod name")


# -- reading ----------------------------------------------------------------------------------
def ls(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    rows = backend.deployments(args.selector)
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["NAMESPACE", "NAME", "MODEL", "VERSION", "READY", "STATUS", "REVISION", "AGE"],
        [
            [
                d.namespace,
                d.name,
                d.model,
                d.version,
                f"{d.ready}/{d.desired}",
                d.state.value + (f" ({d.reason})" if d.state is DeploymentState.FAILED else ""),
                d.revision or "-",
                age(d.created),
            ]
            for d in rows
        ],
    )
    return 0


def _namespace(backend: Backend, args: argparse.Namespace) -> str:
    return str(args.namespace or backend.default_namespace)


def status(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    namespace = _namespace(backend, args)
    return follow_status(backend, namespace, args.name, as_json=args.json, watch=args.watch)


def follow_status(
    backend: Backend, namespace: str, name: str, *, as_json: bool, watch: bool
) -> int:
    """Exit 0 when Available; with ``watch``, follow until it is, fails or is paused (exit 1).
    Without it only a failed rollout exits 1."""
    while True:
        row = backend.deployment(namespace, name)
        if row is None:
            raise ActionFailed(f"deployment {name!r} not found in namespace {namespace}")
        if as_json:
            print(json.dumps(to_json(row), sort_keys=True), flush=True)  # one object per line
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
        time.sleep(WATCH_INTERVAL)


def history(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    namespace = _namespace(backend, args)
    revisions = backend.history(namespace, args.name)
    if not revisions and backend.deployment(namespace, args.name) is None:
        raise ActionFailed(f"deployment {args.name!r} not found in namespace {namespace}")
    if args.json:
        print_json(revisions)
        return 0
    print_table(
        ["REVISION", "MODEL", "VERSION", "CHANGE-CAUSE"],
        [[r.number, r.model, r.model_version, r.change_cause] for r in revisions],
    )
    return 0


def jobs(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    rows = backend.jobs()
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["NAMESPACE", "NAME", "KIND", "MODEL", "PHASE", "GPUS", "NODE", "AGE", "REASON"],
        [
            [
                j.namespace,
                j.name,
                j.kind,
                j.model,
                j.phase.value,
                j.gpus,
                j.node or "-",
                age(j.started),
                j.pending_reason,
            ]
            for j in rows
        ],
    )
    return 0


def logs(session: Session, args: argparse.Namespace) -> int:
    backend = session.backend
    namespace = _namespace(backend, args)
    kind, _, name = args.target.rpartition("/")
    if kind in ("deploy", "deployment"):
        pods = [p.name for p in backend.pods(namespace, name)]
    elif kind == "job":
        pods = backend.job_pods(namespace, name)
    elif kind:
        raise UsageError(f"logs of {args.target!r}: give POD, job/NAME or deploy/NAME")
    else:
        pods = [name]
    if not pods:
        raise ActionFailed(f"no pods for {args.target} in namespace {namespace}")
    request = LogRequest(
        pods,
        namespace,
        since=audit.parse_since(args.since) if args.since else None,
        tail=args.tail,
        follow=args.follow,
        timestamps=args.timestamps,
        previous=args.previous,
        container=args.container,
    )
    for line in backend.logs(request):
        print(line, flush=True)
    return 0


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
    if args.json:
        print_json(
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
            ]
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
    )
    for name, v, m, error in found:
        if m is None:  # the reason under the table: it is long, and the columns stay narrow
            print(printable(f"{name} v{v}: unreadable: {error}"))
    return 0


def _metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def show_audit(args: argparse.Namespace) -> int:
    entries = audit.read_audit(audit.parse_since(args.since) if args.since else None)
    if args.json:
        print_json([e.to_json() for e in entries])
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
            print(json.dumps(to_json(list(outcome.results)), sort_keys=True), flush=True)
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
        return follow_status(backend, namespace, args.name, as_json=args.json, watch=True)
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
                print(json.dumps(found, sort_keys=True, indent=None if args.watch else 2))
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
