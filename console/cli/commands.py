"""The CLI's commands: each opens the profile's backend, acts, prints, and audits mutations."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from console import audit
from console.backends import open_backend
from console.backends.base import Autoscaling, LogRequest
from console.cli import batch as batch_cli
from console.cli.printing import print_json, print_table
from console.core import guard
from console.model import (
    ActionResult,
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

WATCH_INTERVAL = 1.0
Handler = Callable[[Any, Profile, argparse.Namespace], int]


class UsageError(Exception):
    """Bad usage (exit 2)."""


class ActionFailed(Exception):
    """The action failed (exit 1); the message says why."""


def run(args: argparse.Namespace) -> int:
    check_names(args)  # before the profile or a backend: a bad name is never sent anywhere
    profile = load_profile(args.profile)
    if args.command == "models":
        return models(profile, args)
    if args.command == "audit":
        return show_audit(args)
    if batch_cli.reads_only(args):  # batch list/status/halt: the journals, no cluster needed
        return batch_cli.show(profile, args)
    if args.command == "agent":
        from console.local.manage import agent_command

        return agent_command(profile, args.action, args.json)
    read_only = args.readonly or profile.read_only
    if guard.is_mutation(args.command):  # before a backend is opened: nothing is sent
        guard.check_read_only(read_only=read_only, profile=profile.name)
    namespaces: Sequence[str] | None = None
    if args.all_namespaces:
        namespaces = ()
    elif args.namespace:
        namespaces = (args.namespace,)
    user = args.user = _kube_user(profile, args.context)
    backend = open_backend(
        profile,
        context=args.context,
        namespaces=namespaces,
        read_only=read_only,
        user=user,
        parallel=getattr(args, "max_parallel", None),  # a batch's requests share the pool
    )
    try:
        if guard.is_mutation(args.command):
            checks = guard.Guard(backend, read_only, profile.name, user)
            checks.check(args.command, [_namespace(backend, args)])
        return HANDLERS[args.command](backend, profile, args)
    except SelectorError as exc:
        raise UsageError(str(exc)) from None
    finally:
        backend.close()


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


def _kube_user(profile: Profile, context: str | None) -> str:
    settings = profile.kubernetes
    kube_user = None
    if settings is not None and settings.kubeconfig is not None:
        kube_user = audit.kube_context_user(settings.kubeconfig, context or settings.context)
    return audit.current_user(kube_user)


# -- reading ----------------------------------------------------------------------------------
def ls(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
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


def _namespace(backend: Any, args: argparse.Namespace) -> str:
    return str(args.namespace or backend.default_namespace)


def status(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    """Exit 0 when Available; with --watch, follow until it is, fails or is paused (exit 1).
    Without --watch only a failed rollout exits 1."""
    namespace = _namespace(backend, args)
    while True:
        row = backend.deployment(namespace, args.name)
        if row is None:
            raise ActionFailed(f"deployment {args.name!r} not found in namespace {namespace}")
        if args.json:
            print(json.dumps(to_json(row), sort_keys=True), flush=True)  # one object per line
        else:
            pods = backend.pods(namespace, args.name)
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
        if not args.watch:
            return 0
        time.sleep(WATCH_INTERVAL)


def history(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
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


def jobs(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
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


def logs(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
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


def _metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def show_audit(args: argparse.Namespace) -> int:
    entries = audit.read_audit(audit.parse_since(args.since) if args.since else None)
    if args.json:
        print_json([e.to_json() for e in entries])
    else:
        for entry in entries:
            print(printable(audit.format_entry(entry)))
    return 0


# -- mutations --------------------------------------------------------------------------------
def _confirm(action: str, targets: Sequence[str], args: argparse.Namespace) -> None:
    if len(targets) <= 1 or getattr(args, "yes", False) or args.dry_run:
        return
    shown = "\n  ".join(printable(t) for t in targets)
    print(f"{action} {len(targets)} deployments:\n  {shown}", file=sys.stderr)
    if not sys.stdin.isatty():
        raise UsageError(f"{action} of {len(targets)} targets needs confirmation: add --yes")
    try:
        answer = input(f"type {len(targets)} to {action} them all: ").strip()
    except EOFError:
        answer = ""
    if answer != str(len(targets)):
        raise ActionFailed(f"{action} cancelled; nothing was sent")


def _resolve_targets(backend: Any, args: argparse.Namespace) -> list[tuple[str, str]]:
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


def _finish(
    action: str,
    results: list[ActionResult],
    profile: Profile,
    args: argparse.Namespace,
    parameters: dict[str, Any],
) -> int:
    try:
        _audit(action, results, profile, args, parameters)
    except OSError as exc:  # the change is made: show it, and say the record is missing
        print(f"fleetdeck: warning: could not write the audit log: {exc}", file=sys.stderr)
    if getattr(args, "json", False):
        if getattr(args, "wait", False):  # status lines follow: keep one JSON object per line
            print(json.dumps(to_json(results), sort_keys=True), flush=True)
        else:
            print_json(results)
    else:
        for result in results:
            mark = "ok" if result.ok else "FAILED"
            print(printable(f"{result.target}: {mark}: {result.message}"))
            for change in result.changes:
                print(f"    {printable(change)}")
    return 0 if all(r.ok for r in results) else 1


def _audit(
    action: str,
    results: list[ActionResult],
    profile: Profile,
    args: argparse.Namespace,
    parameters: dict[str, Any],
) -> None:
    audit.record(
        action,
        [r.target for r in results],
        profile=profile.name,
        context=args.context or (profile.kubernetes.context if profile.kubernetes else None),
        results=[audit.TargetResult(r.target, r.ok, r.message) for r in results],
        parameters=parameters,
        dry_run=bool(args.dry_run),
        user=args.user,
    )


TargetCall = Callable[[Any, argparse.Namespace, str, str], ActionResult]


def _each(action: str, call: TargetCall, parameters: Sequence[str]) -> Handler:
    """A command acting on NAME... or -l SELECTOR, one result per target."""

    def handler(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
        targets = _resolve_targets(backend, args)
        _confirm(action, [f"{ns}/{name}" for ns, name in targets], args)
        results = [call(backend, args, ns, name) for ns, name in targets]
        return _finish(action, results, profile, args, {k: getattr(args, k) for k in parameters})

    return handler


def deploy(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    request = DeployRequest(
        args.name, args.model, args.version, args.namespace, args.replicas, args.gpus
    )
    result = backend.deploy(request, dry_run=args.dry_run, verify=not args.no_verify)
    code = _finish(
        "deploy",
        [result],
        profile,
        args,
        {
            "model": args.model,
            "version": args.version,
            "replicas": args.replicas,
            "gpus": args.gpus,
        },
    )
    if code == 0 and args.wait and not args.dry_run:
        namespace = request.namespace or backend.default_namespace
        _wait_until_cached(backend, namespace, args.name)
        args.watch, args.namespace = True, namespace
        return status(backend, profile, args)
    return code


def _wait_until_cached(backend: Any, namespace: str, name: str, timeout: float = 30.0) -> None:
    """The watch delivers what was just created a moment later; wait for it (bounded)."""
    deadline = time.monotonic() + timeout
    while backend.deployment(namespace, name) is None:
        if time.monotonic() > deadline:
            raise ActionFailed(
                f"{name} was created but did not show up in the cache within "
                f"{timeout:.0f} s; check with `fleetdeck status {name}`"
            )
        time.sleep(0.1)


def train(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    try:
        params = dict(parse_param(p) for p in args.param)
        grid = {key: tuple(values) for key, values in (parse_grid(g) for g in args.grid)}
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    request = TrainingRequest(
        args.model, args.data, args.namespace, args.gpus, args.epochs, params, grid
    )
    results = backend.train(request, dry_run=args.dry_run)
    code = _finish(
        "train",
        results,
        profile,
        args,
        {
            "model": args.model,
            "data": args.data,
            "gpus": args.gpus,
            "epochs": args.epochs,
            "params": params,
            "grid": args.grid,
        },
    )
    if code or args.dry_run or not args.follow:
        return code
    return _follow_jobs(backend, [r.target for r in results])


def score(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    if args.version < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise UsageError("--version and --batch-size must be 1 or more")
    request = ScoringRequest(args.model, args.version, args.input, args.namespace, args.batch_size)
    result = backend.score(request, dry_run=args.dry_run, verify=not args.no_verify)
    code = _finish(
        "score",
        [result],
        profile,
        args,
        {
            "model": args.model,
            "version": args.version,
            "input": args.input,
            "batch_size": args.batch_size,
        },
    )
    if code or args.dry_run or not args.follow:
        return code
    return _follow_jobs(backend, [result.target])


def _follow_jobs(backend: Any, targets: list[str], timeout: float = 600.0) -> int:
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


def top(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    """The metrics of the profile's deployments (or -l's); rates from a scrape source need two
    reads, so a one-shot run reads twice one interval apart."""
    from console.metrics import collector_for, report

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


def autoscale(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    if not isinstance(backend, Autoscaling):
        raise ActionFailed(f"autoscale needs a Kubernetes profile ({profile.name!r} is local)")
    namespace = _namespace(backend, args)  # RBAC (create and patch) was checked by run
    request = AutoscaleRequest(
        args.name, args.min_replicas, args.max_replicas, args.cpu, args.rps_per_pod
    )
    if request.problems():
        raise UsageError("; ".join(request.problems()))
    result = backend.autoscale(namespace, request, dry_run=args.dry_run)
    parameters = {
        "min": args.min_replicas,
        "max": args.max_replicas,
        "cpu": args.cpu,
        "rps_per_pod": args.rps_per_pod,
    }
    return _finish("autoscale", [result], profile, args, parameters)


def cancel(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    namespace = _namespace(backend, args)
    names = [n.removeprefix("job/") for n in args.jobs]
    _confirm("cancel", [f"{namespace}/{n}" for n in names], args)
    results = [backend.cancel_job(namespace, n, dry_run=args.dry_run) for n in names]
    return _finish("cancel", results, profile, args, {})


_rollout_each = _each(
    "rollout",
    lambda b, a, ns, n: b.rollout(ns, n, a.version, dry_run=a.dry_run, verify=not a.no_verify),
    ["version"],
)

HANDLERS: dict[str, Handler] = {
    "ls": ls,
    "status": status,
    "history": history,
    "jobs": jobs,
    "logs": logs,
    "deploy": deploy,
    "train": train,
    "score": score,
    "cancel": cancel,
    "top": top,
    "autoscale": autoscale,
    "rollout": lambda b, p, a: (
        batch_cli.rollout_in_waves(b, p, a, _resolve_targets(b, a), _confirm)
        if batch_cli.wants_waves(a)
        else _rollout_each(b, p, a)
    ),
    "batch": batch_cli.act,
    "rollback": _each(
        "rollback",
        lambda b, a, ns, n: b.rollback(ns, n, a.to_revision, dry_run=a.dry_run),
        ["to_revision"],
    ),
    "restart": _each("restart", lambda b, a, ns, n: b.restart(ns, n, dry_run=a.dry_run), []),
    "pause": _each("pause", lambda b, a, ns, n: b.pause(ns, n, dry_run=a.dry_run), []),
    "resume": _each("resume", lambda b, a, ns, n: b.resume(ns, n, dry_run=a.dry_run), []),
    "scale": _each(
        "scale",
        lambda b, a, ns, n: b.scale(ns, n, a.replicas, dry_run=a.dry_run),
        ["replicas"],
    ),
    "delete": _each("delete", lambda b, a, ns, n: b.delete(ns, n, dry_run=a.dry_run), []),
}
