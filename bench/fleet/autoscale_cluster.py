"""Autoscaling on the test cluster: from a step in load to the new replicas ready, next to what
the HPA algorithm predicts for the same numbers (the ``--backend kwok`` half of
``python -m bench.fleet.autoscale``).

    python -m bench.fleet.autoscale --backend kwok [--steps 15,30] [--target 5] [--max 6]
        [--rate-window 30s] [--polling 5] [--write]

Against the running test cluster (``tests/infra/cluster up``; never started here), with the
whole pipeline real and beside it as processes: metrics-server and KEDA's operator and metrics
adapter (``tests/infra/k8s/autoscaling.py``, started if needed and stopped afterwards unless a
person started them or another session uses them), Debian's Prometheus scraping the predictors
every second (``DiscoveringPrometheus``), and kube-controller-manager's HPA controller (sync
every 5 s on the test cluster). In a namespace of the bench's own (deleted at the end), each
step ``L`` (req/s) gets a Deployment of its own, made by fleetdeck at 1 replica (KWOK pods),
one real predictor process of the tiny digits model per running pod (``PodPredictors``: a pod's
IP leads to its predictor, which Prometheus scrapes under the pod's name), and an autoscaler
made the way a user makes one: ``fleetdeck autoscale NAME --min 1 --max MAX --rps-per-pod
TARGET --scale-down-window 30`` with a profile whose ``[autoscaling] engine = "keda"``
(a ScaledObject whose Prometheus trigger reads the Deployment's prediction rate over
``--rate-window``; its ``pollingInterval`` ``--polling`` s; KEDA makes the HPA, and each of
the HPA's reads at its sync makes KEDA run the query).

A light load (half the target) runs until the HPA reads it (its metric within 25 % of the light
rate, and at least 20 s); then the load steps to ``L`` req/s, open loop (each request at its
scheduled time, spread round-robin over the predictors behind the pods that run, as
``LoadDriver`` does: a new pod takes its share as soon as its predictor serves). Measured from
the step, polling the API every 0.2 s:

- the first scaling decision: the first poll that sees the Deployment's ``spec.replicas`` (the
  scale the HPA controller writes) above 1, with the metric the HPA read for it (its
  ``status.currentMetrics``, req/s per pod); the ``SuccessfulRescale`` events give the reasons
  (whole seconds only, so they are a cross-check, not the clock);
- the replicas it asked for Ready (the Deployment's ``readyReplicas``; KWOK readies a pod about a
  second after it is made, with no container started, no model loaded, no probe: not like a
  real pod), and their predictors serving (a real predictor process started and ready per new
  pod, closer to what a real pod's start costs);
- the replicas reached against the HPA algorithm's count for the same numbers (``hpa_replicas``
  of ``bench.fleet.autoscale``: the whole step at once, the default scale-up limit, ``--max``);
- the requests sent after the step and those that failed (goal 0).

``--write`` records the table in bench/README.md under ``fleet-autoscale-cluster``, right after
the local runtime's section and its notes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from traceback import format_exception
from types import FrameType
from typing import Any

import pytest

from bench import readme
from bench.fleet.autoscale import hpa_replicas, seconds
from console.backends.kubernetes.autoscale import parse_quantity, read_autoscaler
from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeployRequest
from console.profile import load_profile
from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s.cluster import Cluster
from tests.infra.k8s.layout import default_layout
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.autoscaling import (
    HPA_TOLERANCE,
    DiscoveringPrometheus,
    LoadDriver,
    PodPredictors,
    running_pipeline,
)
from tests.support.cli import Fleetdeck, Result
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess

SECTION = "fleet-autoscale-cluster"
AFTER = ("fleet-autoscale-notes", "fleet-autoscale")  # the section goes after the first found
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
HPA_SYNC_S = 5  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period here
SCRAPE_S = 1.0  # Prometheus' scrape interval here
WARM_SECONDS = 20.0  # at least, at the light load, before the step
SETTLE_SECONDS = 75.0  # watched after the step
SCALE_DOWN_WINDOW = 30
POLL_S = 0.2
PROFILE = "bench-keda"


def say(message: str) -> None:
    print(f"autoscale-kwok {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


@dataclass
class Change:
    at_s: float  # from the step
    before: int
    after: int
    metric: float | None = None  # req/s per pod, as the HPA read it for this change


@dataclass
class ClusterStep:
    load: float
    predicted: list[int]
    changes: list[Change] = field(default_factory=list)
    ready_s: float | None = None  # the first decision's replicas Ready (KWOK)
    serving_s: float | None = None  # ... and a predictor serving behind each
    final_ready_s: float | None = None  # the last count reached, Ready
    reached: int = 1
    reasons: list[str] = field(default_factory=list)  # the SuccessfulRescale events', oldest first
    event_first_s: float | None = None  # the first SuccessfulRescale event (whole seconds)
    warm_metric: float | None = None  # the HPA's metric just before the step
    sent: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def first_decision_s(self) -> float | None:
        return self.changes[0].at_s if self.changes else None


@dataclass
class Bench:
    k8s: K8sCluster
    namespace: str
    prometheus: DiscoveringPrometheus
    model: TinyModel
    folder: Path
    fleetdeck: Fleetdeck
    target: float
    most: int
    predictors: list[PredictorProcess] = field(default_factory=list)

    def start_predictor(self) -> PredictorProcess:
        number = len(self.predictors)
        predictor = PredictorProcess(
            self.folder / f"predictor-{number}.log",
            "--cache-dir",
            str(self.folder / "cache"),
            "--model-uri",
            str(self.model.version_dir),
            "--host",
            "0.0.0.0",  # the pod's IP is this machine's address
        )
        self.predictors.append(predictor)
        predictor.wait_ready()
        return predictor


# -- the profile and the user's commands ------------------------------------------------------
def write_profile(
    home: Path, k8s: K8sCluster, namespace: str, prometheus_url: str, window: str, polling: int
) -> None:
    """A user's profile: the test cluster, the namespace, KEDA reading the Prometheus."""
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / f"{PROFILE}.toml").write_text(
        'backend = "kubernetes"\n'
        f'[kubernetes]\nkubeconfig = "{k8s.kubeconfig}"\ncontext = "kwok-admin"\n'
        f'namespaces = ["{namespace}"]\n'
        '[store]\nroot = "/nonexistent"\n'
        f'[metrics]\nprometheus_url = "{prometheus_url}"\n'
        f'[autoscaling]\nengine = "keda"\nrate_window = "{window}"\n'
        f"polling_seconds = {polling}\n"
    )


def cli(home: Path) -> Fleetdeck:
    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": PROFILE,
        }
    )


def ok(result: Result) -> Result:
    if result.code != 0:
        raise RuntimeError(f"fleetdeck exited {result.code}\n{result.out}\n{result.err}")
    return result


def deploy(k8s: K8sCluster, namespace: str, name: str, model: str) -> None:
    backend = KubernetesBackend(
        load_profile("kwok"), api_client=k8s.api_client(), namespaces=[namespace], user="bench"
    )
    result = backend.actions.deploy(
        DeployRequest(name, model, 1, replicas=1), namespace, verify=False
    )
    assert result.ok, result.message


# -- reading the cluster ----------------------------------------------------------------------
def read_hpa(k8s: K8sCluster, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.AutoscalingV2Api(k8s.api_client())
    try:
        answer = api.read_namespaced_horizontal_pod_autoscaler(
            name, namespace, _preload_content=False, _request_timeout=5
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(json.loads(answer.data))


def hpa_metric(hpa: dict[str, Any] | None) -> float | None:
    """The req/s per pod the HPA read last (its one external metric's average value)."""
    for metric in ((hpa or {}).get("status") or {}).get("currentMetrics") or ():
        current = (metric.get("external") or {}).get("current") or {}
        value = parse_quantity(current.get("averageValue"))
        if value is not None:
            return value
    return None


def replicas(k8s: K8sCluster, namespace: str, name: str) -> tuple[int, int]:
    """The Deployment's (spec.replicas, status.readyReplicas)."""
    from kubernetes import client

    found = client.AppsV1Api(k8s.api_client()).read_namespaced_deployment(
        name, namespace, _request_timeout=5
    )
    ready = found.status.ready_replicas if found.status is not None else None
    return int(found.spec.replicas or 0), int(ready or 0)


def remove(k8s: K8sCluster, namespace: str, name: str) -> None:
    """The step's ScaledObject (KEDA removes its HPA) and Deployment."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = k8s.api_client()
    with contextlib.suppress(ApiException):
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            KEDA[0], KEDA[1], namespace, KEDA[2], name
        )
    with contextlib.suppress(ApiException):
        client.AppsV1Api(api).delete_namespaced_deployment(name, namespace)


# -- one step -----------------------------------------------------------------------------------
def one_step(bench: Bench, load: float, window: str) -> ClusterStep:
    k8s, namespace, prometheus = bench.k8s, bench.namespace, bench.prometheus
    name = f"scale-{int(load)}"
    hpa_name = f"keda-hpa-{name}"
    body = {"instances": [bench.model.images[0].tolist()]}
    step = ClusterStep(load, hpa_replicas(load, bench.target, bench.most))
    deploy(k8s, namespace, name, bench.model.name)
    light = bench.target / 2
    with PodPredictors(k8s, namespace, name, bench.start_predictor, prometheus) as predictors:
        poll_until(
            f"Prometheus to scrape {name}'s first pod",
            lambda: len(prometheus.scraped_pods(namespace, name)) == 1,
            120,
        )
        with LoadDriver(predictors.endpoints, bench.model.name, body, light, workers=4) as warm:
            began = time.monotonic()
            args = ["autoscale", name, "--min", "1", "--max", str(bench.most)]
            args += ["--rps-per-pod", f"{bench.target:g}"]
            args += ["--scale-down-window", str(SCALE_DOWN_WINDOW)]
            made = ok(bench.fleetdeck(*args))
            say(made.out.strip().splitlines()[0] if made.out.strip() else "autoscaler made")

            def warmed() -> float | None:
                value = hpa_metric(read_hpa(k8s, namespace, hpa_name))
                if value is None or time.monotonic() - began < WARM_SECONDS:
                    return None
                return value if abs(value - light) <= 0.25 * light else None

            step.warm_metric = poll_until(f"the HPA to read {light:g} req/s", warmed, 180)
            assert replicas(k8s, namespace, name)[0] == 1, "scaled before the step"
            warm_failures = list(warm.failures)
        if warm_failures:
            say(f"{len(warm_failures)} failures before the step: {warm_failures[:3]}")
        stepped_at = time.time()
        with LoadDriver(predictors.endpoints, bench.model.name, body, load, workers=8) as loaded:
            last_spec, last_reached = 1, 1
            pending: Change | None = None  # a change whose metric the HPA has not shown yet
            while (now := time.time()) - stepped_at < SETTLE_SECONDS:
                try:
                    spec, ready = replicas(k8s, namespace, name)
                    hpa = read_hpa(k8s, namespace, hpa_name) if pending else None
                except Exception as exc:  # the API server busy: the next poll
                    say(f"read failed: {exc!r:.120}")
                    time.sleep(POLL_S)
                    continue
                at = now - stepped_at
                if spec != last_spec:
                    pending = Change(at, last_spec, spec)
                    step.changes.append(pending)
                    last_spec = spec
                    hpa = read_hpa(k8s, namespace, hpa_name)
                if pending is not None and hpa is not None:
                    desired = (hpa.get("status") or {}).get("desiredReplicas")
                    if desired == pending.after:
                        pending.metric, pending = hpa_metric(hpa), None
                first = step.changes[0].after if step.changes else None
                if first is not None and step.ready_s is None and ready >= first:
                    step.ready_s = at
                serving = len(predictors.endpoints())
                if first is not None and step.serving_s is None and serving >= first:
                    step.serving_s = at
                if step.changes and spec == ready and ready > last_reached:
                    last_reached, step.final_ready_s = ready, at
                time.sleep(max(0.0, POLL_S - (time.time() - now)))
            step.reached = last_reached
        step.sent, step.failed = loaded.sent, len(loaded.failures)
        step.failures = loaded.failures[:5]
        info = read_autoscaler(k8s.api_client(), namespace, name, "keda")
        kept = [d for d in reversed(info.decisions if info else ()) if d.at >= stepped_at - 1]
        step.reasons = [f"{d.to_replicas}: {d.reason}" for d in kept]
        if kept:
            step.event_first_s = kept[0].at - stepped_at
        if predictors.problems:
            say(f"{name}'s predictors: {predictors.problems[:3]}")
    remove(k8s, namespace, name)
    return step


# -- the report ---------------------------------------------------------------------------------
def change_text(change: Change) -> str:
    metric = "" if change.metric is None else f" ({change.metric:.1f}/pod)"
    return f"{change.before}→{change.after}{metric}"


def report(
    steps: list[ClusterStep],
    target: float,
    most: int,
    window: str,
    polling: int,
    setup_s: float,
    load_avg: str,
) -> str:
    today = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = ",".join(f"{s.load:g}" for s in steps)
    lines = [
        f"### Autoscaling, test cluster: KEDA + Prometheus + the HPA controller, KWOK pods "
        f"({today}, {os.cpu_count()} cores, load average at start {load_avg})",
        "",
        f"`python -m bench.fleet.autoscale --backend kwok --steps {loads} --target {target:g} "
        f"--max {most} --rate-window {window} --polling {polling}`: each step on a Deployment "
        f"of its own at 1 KWOK pod with a real predictor per pod, autoscaled with `fleetdeck "
        f"autoscale --min 1 --max {most} --rps-per-pod {target:g}` on a profile with "
        f'`engine = "keda"` (a ScaledObject, its Prometheus trigger `sum(rate(...[{window}]))`, '
        f"`pollingInterval` {polling} s; Prometheus scrapes every {SCRAPE_S:g} s; the HPA "
        f"controller syncs every {HPA_SYNC_S} s), {target / 2:g} req/s until the HPA reads "
        f"it (at least {WARM_SECONDS:.0f} s), then the step, open loop at the predictors; "
        f"watched {SETTLE_SECONDS:.0f} s, polled every {POLL_S:g} s. A decision is the "
        f"Deployment's `spec.replicas` changed by the HPA, with the req/s per pod the HPA read "
        f"for it. Setup (the model trained, the pipeline, Prometheus) {setup_s:.0f} s.",
        "",
        "| step req/s | HPA algorithm: replicas (per 15 s) | reached | decisions (HPA's req/s "
        "per pod) | step → first decision, s | → its replicas Ready (KWOK), s | → their "
        "predictors serving, s | → the last count Ready, s | requests (failed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        predicted = " → ".join(["1", *map(str, s.predicted)])
        lines.append(
            f"| {s.load:g} | {predicted} | {s.reached} "
            f"| {', '.join(change_text(c) for c in s.changes) or '-'} "
            f"| {seconds(s.first_decision_s)} | {seconds(s.ready_s)} | {seconds(s.serving_s)} "
            f"| {seconds(s.final_ready_s)} | {s.sent} ({s.failed}) |"
        )
    lines += ["", notes(steps, target, window, polling)]
    return "\n".join(lines)


def notes(steps: list[ClusterStep], target: float, window: str, polling: int) -> str:
    decided = [s.first_decision_s for s in steps if s.first_decision_s is not None]
    ready_after = [
        s.ready_s - s.first_decision_s
        for s in steps
        if s.ready_s is not None and s.first_decision_s is not None
    ]
    serving_after = [
        s.serving_s - s.first_decision_s
        for s in steps
        if s.serving_s is not None and s.first_decision_s is not None
    ]
    events = [
        s.event_first_s - s.first_decision_s
        for s in steps
        if s.event_first_s is not None and s.first_decision_s is not None
    ]
    reasons = sorted({r.split(": ", 1)[1] for s in steps for r in s.reasons})
    parts = [
        "**Reading the test-cluster table.** The pipeline's delays add up before the HPA can "
        f"decide: Prometheus scrapes the predictors every {SCRAPE_S:g} s; the trigger's "
        f"`rate()` over {window} shows a step only gradually (the share of the window since "
        f"the step); the HPA controller asks KEDA's metrics adapter for the value at its sync "
        f"every {HPA_SYNC_S} s, and KEDA's operator runs the Prometheus query then (fleetdeck "
        "sets no `useCachedMetrics`). KEDA's own polling, every "
        f"{polling} s, decides only activation (0 ↔ 1 replicas) and the ScaledObject's Active "
        "condition, so it does not delay a scale-up from 1. With a partly filled window the "
        "HPA asks for fewer replicas than the whole step needs, then more at later syncs, "
        "within its default scale-up limit (+100 % or +4 pods per 15 s) and its tolerance "
        f"(no change while the ratio to the target is within {HPA_TOLERANCE * 100:.0f} %). The HPA "
        "algorithm's column is the whole step seen at once."
    ]
    if decided:
        parts.append(
            f"Here the first decisions came {min(decided):.1f}–{max(decided):.1f} s after the "
            f"steps (median {statistics.median(decided):.1f})"
            + (
                f"; the `SuccessfulRescale` events (whole seconds) are dated "
                f"{min(events):+.1f} to {max(events):+.1f} s from them"
                if events
                else ""
            )
            + (f"; reasons given: {'; '.join(f'“{r}”' for r in reasons)}." if reasons else ".")
        )
    last = [s.final_ready_s for s in steps if s.final_ready_s is not None and s.changes]
    if last:
        parts.append(
            f"The last count was Ready {min(last):.1f}–{max(last):.1f} s after the steps, "
            f"after {' / '.join(str(len(s.changes)) for s in steps)} decisions: the rate the "
            f"HPA reads holds the whole step only once the {window} window has passed it."
        )
    if ready_after:
        parts.append(
            f"KWOK marked the new pods Ready {min(ready_after):.1f}–{max(ready_after):.1f} s "
            "after the decision: no image pulled, no container started, no readiness probe, "
            "so on a real cluster add the pod's start, the model's fetch, load and warm-up. "
            "Their real predictor processes (started here one at a time when a pod runs, the "
            "model already on disk) served "
            f"{min(serving_after):.1f}–{max(serving_after):.1f} s after the decision."
            if serving_after
            else "KWOK marked the new pods Ready "
            f"{min(ready_after):.1f}–{max(ready_after):.1f} s after the decision."
        )
    failed = sum(s.failed for s in steps)
    parts.append(
        f"{failed} of {sum(s.sent for s in steps)} requests failed after the steps (sent to the "
        "predictors directly, round-robin over those behind running pods: no Service, no "
        "kube-proxy on KWOK)."
    )
    return " ".join(parts)


def record(table: str) -> None:
    """The table under its own markers, right after the first of the ``AFTER`` sections."""
    readme.record(SECTION, table, "## Fleet", after=AFTER)


# -- main ---------------------------------------------------------------------------------------
def wait_gone(k8s: K8sCluster, namespace: str, timeout: float = 180) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(k8s.api_client())

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    poll_until(f"namespace {namespace} gone", gone, timeout)


@contextlib.contextmanager
def pipeline_running(k8s: K8sCluster) -> Iterator[AutoscalingPipeline]:
    """``running_pipeline`` outside pytest: its skip or failure becomes an exit."""
    steps = running_pipeline(k8s)
    try:
        pipeline = next(steps)
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        sys.exit(f"the autoscaling pipeline cannot run: {exc}")
    try:
        yield pipeline
    finally:
        with contextlib.suppress(StopIteration):
            next(steps)


def main(args: argparse.Namespace) -> None:
    """``--backend kwok`` of ``bench.fleet.autoscale`` (its arguments, parsed)."""
    loads = [float(part) for part in args.steps.split(",")]
    k8s = K8sCluster(Cluster(default_layout()), started_here=False)
    if not k8s.cluster.api_ready():
        sys.exit(f"the test cluster is not running ({k8s.kubeconfig}): tests/infra/cluster up")

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    load_avg = "/".join(f"{v:.2f}" for v in os.getloadavg())
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-autoscale-kwok-"))
    namespace = f"bench-autoscale-{secrets.token_hex(3)}"
    began = time.perf_counter()
    steps: list[ClusterStep] = []
    setup_s = 0.0
    bench: Bench | None = None
    try:
        with pipeline_running(k8s):
            say(f"pipeline up ({time.perf_counter() - began:.0f} s)")
            (folder / "store").mkdir()
            model = train_tiny_model(folder / "store")
            say(f"model trained ({time.perf_counter() - began:.0f} s)")
            try:
                prometheus = DiscoveringPrometheus(folder / "prometheus", interval_s=SCRAPE_S)
            except (pytest.skip.Exception, pytest.fail.Exception) as exc:
                sys.exit(f"no Prometheus: {exc}")
            made = False
            try:
                k8s.create_namespace(namespace)
                made = True
                home = folder / "home"
                write_profile(home, k8s, namespace, prometheus.url, args.rate_window, args.polling)
                bench = Bench(
                    k8s, namespace, prometheus, model, folder, cli(home), args.target, args.max
                )
                setup_s = time.perf_counter() - began
                say(f"set up in {setup_s:.0f} s; namespace {namespace}")
                for load in loads:
                    try:
                        step = one_step(bench, load, args.rate_window)
                    except (Exception, pytest.fail.Exception) as exc:
                        say(f"step {load:g} failed: {''.join(format_exception(exc))}")
                        break
                    say(
                        f"step {load:g} req/s: decisions "
                        f"{', '.join(change_text(c) for c in step.changes) or '-'} "
                        f"(first {seconds(step.first_decision_s)} s, event "
                        f"{seconds(step.event_first_s)} s), Ready {seconds(step.ready_s)} s, "
                        f"serving {seconds(step.serving_s)} s, reached {step.reached} (HPA "
                        f"{step.predicted}), {step.failed} of {step.sent} failed "
                        f"{step.failures[:3]}; reasons {step.reasons}"
                    )
                    steps.append(step)
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up runs to its end
                if made:
                    try:  # while KEDA runs: it releases its ScaledObjects' finalizers
                        k8s.delete_namespace(namespace)
                        wait_gone(k8s, namespace)
                    except (Exception, pytest.fail.Exception) as exc:
                        say(f"deleting namespace {namespace}: {exc!r}")
                prometheus.stop()
                for predictor in bench.predictors if bench else ():
                    predictor.stop()
    finally:
        k8s.close()
        shutil.rmtree(folder, ignore_errors=True)
    say(f"done in {time.perf_counter() - began:.0f} s")
    if not steps:
        sys.exit("no step finished")
    table = report(steps, args.target, args.max, args.rate_window, args.polling, setup_s, load_avg)
    print(table)
    if args.write and len(steps) == len(loads):
        record(table)
    elif args.write:
        sys.exit(f"only {len(steps)} of {len(loads)} steps finished: not recorded")
