"""On call in the deck on the test cluster: a slow change named in the banner, undone by a key.

    python -m bench.console.oncall_cluster [--runs 3] [--replicas 2] [--rate 20] [--write]

The scene of ``tests/e2e/tui/test_changes_kwok.py``, timed, with the test's own helpers, against
the running test cluster (``tests/infra/cluster up``; never started here): in a namespace of
the bench's own (deleted at the end, also on failure, Ctrl-C or SIGTERM), KWOK pods led to real
predictors on this machine (``ProxiedPods``/``LeadingPods``: a pod's first declared container
port names the predictor it leads to), the tiny digits model served by a fast predictor and by
a slow one (the same model, ``--batch-timeout-ms 60``: every request waits for its batch), a
MetricsCollector reading the pods through the API server's pod proxy (window 3 s, a refresh
every 0.5 s) and the deck with an SLO limit between the two predictors' p99, measured once
through the pod proxy as the test does (``slo_between_the_predictors``).

The bad change is the test's ``kubectl patch`` of the pod template's container port to the slow
predictor's (a new revision, "not via fleetdeck"), not the deck's ``u``: a fleetdeck rollout
changes the model version, its URI and labels but keeps the port, and KWOK runs no containers,
so the new pods would lead to the same fast predictor (the machine has one address, so nothing
but the port can tell the pods of two revisions apart).

The load is what the Service's clients would send, as closely as a cluster with no pod network
and no kube-proxy allows: ``--rate`` prediction requests per second, paced (open loop: a slow
answer does not slow the clients down), each to one of the Service's endpoints picked at random
as kube-proxy does (its EndpointSlices read every 0.1 s: the ready endpoints, or the serving
terminating ones when none is ready), sent through the API server's pod proxy to that pod. The
proxy is the only path here that fails when the pod is gone, as a connection to a deleted pod
would (the predictor processes outlive every pod). An endpoint KWOK marks ready before
``LeadingPods`` gave its pod this machine's address is skipped as not ready (a real readiness
probe would not pass before the predictor answers); a request that finds no endpoint at all
is a failure ("no endpoint").

Each run makes its own Deployment (``--replicas`` pods, rolling update maxSurge 25 %,
maxUnavailable 0) on the fast predictor, lets the collector measure it for 10 s with the deck open,
patches it, then measures

- banner: from the first request answered by the slow predictor to ``app.breach_text``
  becoming non-empty, in seconds and in metrics refreshes (the collector's refreshes in
  between, counted); also from the refresh whose window p99 first crossed the limit: the
  issue's goal is the banner within two refreshes of the crossing. The first answer over the
  limit after the patch is reported too, with the predictor that gave it (client side, through
  the API server, so the fast predictor's answers pass the limit now and then);
- undo: from ``U`` on the change's row of the Changes screen (``y`` pressed as soon as the plan
  is shown) to every replica back on the first template (revision 3, the fast predictor's
  port), available, and led to its predictor, with no pod of the slow revision left but
  terminating ones (the API read every 0.1 s); and the load requests that failed meanwhile.

Copied rather than imported: the one-pod ``ProxiedPods.deploy`` takes no replica count, so
``deploy_on`` is it with one. Medians and maxima over ``--runs``; ``--write`` records the table
in bench/README.md under "console-oncall-cluster", right after the console-oncall section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from traceback import format_exception
from types import FrameType
from typing import Any

import pytest

from bench import readme
from bench.console.oncall import quantiles, spread, until
from console.backends.kubernetes.backend import KubernetesBackend
from console.metrics import MetricsCollector, pod_proxy_source
from console.metrics.readings import DeploymentMetrics
from console.model import DeployRequest
from console.profile import Profile, SloSettings, load_profile
from console.tui.app import DeckApp
from console.tui.screens.changes import ConfirmUndo
from tests.e2e.tui.deck_pilot import open_changes_until_regressed, wait_for_undo_row
from tests.e2e.tui.test_changes_kwok import (
    NAME,
    REVISION,
    LeadingPods,
    at_revision,
    p99s,
    slo_between_the_predictors,
)
from tests.infra.k8s.cluster import Cluster
from tests.infra.k8s.layout import default_layout
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.k8s_objects import apps
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods

PROBE = "digits-probe"  # as the test's: the slow predictor's deployment while calibrating
INTERVAL_S = 0.5  # as the test
WINDOW_S = 3.0
BATCH_TIMEOUT_MS = "60"  # the slow predictor's, as the test's
UNDO_GOAL_S = 15.0  # the goal on the local runtime
BANNER_GOAL_REFRESHES = 2
POLL_S = 0.1
FAST_S = 10.0  # the fast predictor measured this long with the deck open before the change
SECTION = "console-oncall-cluster"
AFTER = ("console-oncall-notes", "console-oncall")  # the section goes after the first found


def say(message: str) -> None:
    print(f"oncall-cluster {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


# -- the load: the Service's clients, through the pod proxy ------------------------------------
@dataclasses.dataclass(frozen=True)
class Endpoint:
    pod: str
    port: int
    address: str
    ready: bool
    serving: bool
    terminating: bool


# answered at (epoch s), latency s, ok, the port of the predictor that was asked (0: none),
# why it failed ("" if it did not)
Answer = tuple[float, float, bool, int, str]


class ServiceLoad:
    """``rate`` prediction requests per second to the Service ``service``'s pods, paced, each
    to one of its usable endpoints at random, through the API server's pod proxy; every answer
    kept with the time it came back."""

    def __init__(
        self,
        k8s: K8sCluster,
        namespace: str,
        service: str,
        model: TinyModel,
        rate: float,
        address: str,
        workers: int = 8,
    ) -> None:
        from kubernetes import client

        configuration = copy.deepcopy(k8s.api_client().configuration)
        configuration.connection_pool_maxsize = workers + 4
        self.api: Any = client.ApiClient(configuration)
        self.discovery: Any = client.DiscoveryV1Api(self.api)
        self.namespace, self.service, self.address = namespace, service, address
        # The pod's name (with the port) filled in per request; the path sent as it is.
        self.resource = "/api/v1/namespaces/{namespace}/pods/{name}/proxy/"
        self.resource += f"v1/models/{model.name}:predict"
        self.body = {"instances": [model.images[0].tolist()]}
        self.interval = 1.0 / rate
        self.workers = workers
        self.endpoints: list[Endpoint] = []
        self.answers: list[Answer] = []
        self.problems: list[str] = []
        self._random = random.Random(0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._read = threading.Event()  # the endpoints read once: the clients may start
        self._threads = [
            threading.Thread(target=self._follow_endpoints, name=f"{service} endpoints"),
            threading.Thread(target=self._pace, name=f"{service} load"),
        ]

    def __enter__(self) -> ServiceLoad:
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.api.close()

    def _follow_endpoints(self) -> None:
        selector = f"kubernetes.io/service-name={self.service}"
        while not self._stop.is_set():
            try:
                slices = self.discovery.list_namespaced_endpoint_slice(
                    self.namespace, label_selector=selector, _request_timeout=5
                ).items
            except Exception as exc:  # the API server busy: the last view stands
                self.problems.append(f"endpoints: {exc!r:.100}")
                slices = None
            if slices is not None:
                found = []
                for part in slices:
                    ports = [p.port for p in part.ports or [] if p.port]
                    for endpoint in part.endpoints or []:
                        conditions = endpoint.conditions
                        ref = endpoint.target_ref
                        if not ports or ref is None or conditions is None:
                            continue
                        found.append(
                            Endpoint(
                                ref.name,
                                ports[0],
                                endpoint.addresses[0],
                                bool(conditions.ready),
                                bool(conditions.serving),
                                bool(conditions.terminating),
                            )
                        )
                with self._lock:
                    self.endpoints = found
                self._read.set()
            self._stop.wait(POLL_S)

    def usable(self) -> list[Endpoint]:
        """kube-proxy's choice: the ready endpoints, or the serving terminating ones when none
        is ready; only those whose pod leads to a predictor here count as ready."""
        with self._lock:
            led = [e for e in self.endpoints if e.address == self.address]
        ready = [e for e in led if e.ready]
        return ready or [e for e in led if e.serving and e.terminating]

    def _pace(self) -> None:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.service} client")
        try:
            while not self._read.wait(POLL_S) and not self._stop.is_set():
                pass
            next_at = time.monotonic()
            while not self._stop.is_set():
                pool.submit(self._one)
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # those in flight only

    def _one(self) -> None:
        from kubernetes.client.exceptions import ApiException

        choices = self.usable()
        started = time.perf_counter()
        port, failure = 0, ""
        if not choices:
            with self._lock:
                waiting = len(self.endpoints)
            failure = "no endpoint" + (f" ({waiting} not ready)" if waiting else "")
        else:
            endpoint = self._random.choice(choices)
            port = endpoint.port
            try:
                method, url, headers, body, post = self.api.param_serialize(
                    method="POST",
                    resource_path=self.resource,
                    path_params={"namespace": self.namespace, "name": f"{endpoint.pod}:{port}"},
                    header_params={"Content-Type": "application/json", "Accept": "*/*"},
                    body=self.body,
                    auth_settings=["BearerToken"],
                )
                answer = self.api.call_api(method, url, headers, body, post, _request_timeout=15)
                text = answer.read()
                if answer.status != 200:
                    failure = f"HTTP {answer.status}: {text[:80].decode(errors='replace')}"
            except ApiException as exc:
                failure = f"HTTP {exc.status}: {exc.reason}"
            except Exception as exc:  # the connection: what a client would see too
                failure = f"{type(exc).__name__}: {str(exc)[:80]}"
        latency = time.perf_counter() - started
        with self._lock:
            self.answers.append((time.time(), latency, not failure, port, failure))

    def taken(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


# -- the cluster's side ------------------------------------------------------------------------
def deploy_on(pods: ProxiedPods, name: str, port: int, replicas: int) -> None:
    """``ProxiedPods.deploy`` with ``replicas`` pods (its own makes one): a fleetdeck
    Deployment whose template declares ``port``."""
    profile = dataclasses.replace(
        pods.profile,
        predictor=dataclasses.replace(pods.profile.predictor, port=port, replicas=replicas),
    )
    backend = KubernetesBackend(
        profile, api_client=pods.k8s.api_client(), namespaces=[pods.namespace], user="bench"
    )
    result = backend.actions.deploy(
        DeployRequest(name, "digits", 1, replicas=replicas), pods.namespace, verify=False
    )
    assert result.ok, result.message


def replicas_on(pods: ProxiedPods, revision: int, port: int, replicas: int) -> bool:
    """The Deployment at ``revision`` (seen by its controller) with ``replicas`` pods, all
    updated and available, each running, on ``port`` and led here; no other pod left but
    terminating ones."""
    found = apps(pods.k8s).read_namespaced_deployment(NAME, pods.namespace)
    status = found.status
    annotations = found.metadata.annotations or {}
    if (
        annotations.get(REVISION) != str(revision)
        or (status.observed_generation or 0) < found.metadata.generation
        or int(found.spec.template.spec.containers[0].ports[0].container_port) != port
        or not (status.replicas == status.updated_replicas == status.available_replicas)
        or status.available_replicas != replicas
    ):
        return False
    listed = pods.core.list_namespaced_pod(
        pods.namespace, label_selector=f"app.kubernetes.io/name={NAME}"
    ).items
    live = [p for p in listed if not p.metadata.deletion_timestamp]
    return len(live) == replicas and all(
        p.status.phase == "Running"
        and p.status.pod_ip == pods.address
        and p.spec.containers[0].ports[0].container_port == port
        for p in live
    )


class FirstTime:
    """A thread calling ``check`` every 0.1 s until it holds: ``at`` is when it first did."""

    def __init__(self, what: str, check: Callable[[], bool]) -> None:
        self.what, self.check = what, check
        self.at = 0.0
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=what, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.check():
                    self.at = time.time()
                    return
            except Exception as exc:  # the API server busy: next time
                self.problems.append(f"{self.what}: {exc!r:.100}")
            self._stop.wait(POLL_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_gone(k8s: K8sCluster, namespace: str, seconds: float = 300) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(k8s.api_client())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                say(f"namespace {namespace} gone")
                return
            raise
        time.sleep(2)
    say(f"namespace {namespace} still terminating after {seconds:.0f} s")


# -- one run -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Scene:
    k8s: K8sCluster
    namespace: str
    backend: KubernetesBackend
    pods: ProxiedPods
    collector: MetricsCollector
    model: TinyModel
    fast: PredictorProcess
    slow: PredictorProcess
    folder: Path
    replicas: int
    rate: float
    limit: float = 0.0  # ms; 0 until measured (in the first run)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, NAME)

    def load(self, service: str) -> ServiceLoad:
        return ServiceLoad(
            self.k8s, self.namespace, service, self.model, self.rate, self.pods.address
        )


@dataclasses.dataclass
class Run:
    number: int
    load: float = 0.0  # the machine's 1-minute load average as the run began
    limit_ms: float = 0.0
    patch_at: float = 0.0  # the kubectl patch started (epoch s)
    patched_at: float = 0.0  # kubectl returned
    revision_2_at: float = 0.0  # the Deployment first read at revision 2 (polled every 0.1 s)
    first_slow_at: float = 0.0  # the first answer by the slow predictor
    first_slow_ms: float = 0.0
    first_over_at: float = 0.0  # the first answer after the patch slower than the limit
    first_over_ms: float = 0.0
    first_over_by: str = ""  # the predictor that gave it
    fast_ms: tuple[float, float] = (0.0, 0.0)  # client-side p50, p99 in the 10 s before
    slow_ms: tuple[float, float] = (0.0, 0.0)  # the slow predictor's answers, p50, p99
    over_before: int = 0  # answers over the limit in the 10 s before the patch (fast)
    answers_before: int = 0
    crossing_at: float = 0.0  # the first refresh after the patch with window p99 > limit
    crossing_p99_ms: float = 0.0
    banner_at: float = 0.0  # app.breach_text first non-empty
    named_at: float = 0.0  # ... and naming the change ("last change")
    banner: str = ""
    refreshes_to_banner: int = 0  # refreshes after the first slow answer, the banner's included
    refreshes_after_crossing: int = 0  # refreshes after the crossing's, the banner's included
    undo_pressed_at: float = 0.0
    confirmed_at: float = 0.0
    undone_at: float = 0.0
    undo_requests: int = 0
    undo_failures: int = 0
    undo_failed_why: dict[str, int] = dataclasses.field(default_factory=dict)
    sent: int = 0
    failures: int = 0
    failed_why: dict[str, int] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    answers: list[Answer] = dataclasses.field(default_factory=list, repr=False)
    history: list[DeploymentMetrics] = dataclasses.field(default_factory=list, repr=False)
    # The collector's window p99 at each refresh from the slow's first answer to the crossing.
    p99_before_crossing: list[float] = dataclasses.field(default_factory=list)

    @property
    def banner_after_slow(self) -> float:
        return self.banner_at - self.first_slow_at

    @property
    def banner_after_crossing(self) -> float:
        return self.banner_at - self.crossing_at

    @property
    def undo_s(self) -> float:
        return self.undone_at - self.undo_pressed_at


async def scenario(scene: Scene, profile: Profile, run: Run) -> None:
    k8s, namespace, key = scene.k8s, scene.namespace, scene.key
    app = DeckApp(
        scene.backend,
        profile,
        context="kwok-admin",
        user="alice",
        audit_path=scene.folder / f"audit-{run.number}.jsonl",
        metrics=scene.collector,
    )
    async with app.run_test(size=(160, 50)) as pilot:
        before = len(p99s(scene.collector, key))
        await until(
            pilot,
            "the fast predictor measured for a while with the deck open",
            lambda: len(p99s(scene.collector, key)) >= before + FAST_S / INTERVAL_S,
            60,
        )
        await until(pilot, "no breach before the change", lambda: app.breach_text == "", 30)

        async def watch_banner() -> None:
            while not app.breach_text:  # noqa: ASYNC110 (a plain attribute: no event to await)
                await asyncio.sleep(0.01)
            run.banner_at, run.banner = time.time(), app.breach_text
            while "last change" not in app.breach_text:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            run.named_at, run.banner = time.time(), app.breach_text

        watcher = asyncio.create_task(watch_banner())
        revision_2 = FirstTime(
            "revision 2", lambda: at_revision(k8s, namespace, 2) == scene.slow.port
        )
        # The operator's change, with kubectl (the test's): the pod template now declares the
        # slow predictor's port. kubectl in a thread, so the deck runs on meanwhile.
        path = "/spec/template/spec/containers/0/ports/0/containerPort"
        patch = json.dumps([{"op": "replace", "path": path, "value": scene.slow.port}])
        run.patch_at = time.time()
        await asyncio.to_thread(
            k8s.kubectl, "patch", f"deployment/{NAME}", "-n", namespace, "--type=json", "-p", patch
        )
        run.patched_at = time.time()
        try:
            await until(pilot, "revision 2", lambda: revision_2.at, 180)
        finally:
            revision_2.stop()
        run.revision_2_at = revision_2.at
        await until(pilot, "the banner naming the change", lambda: run.named_at, 180)
        await watcher
        run.history = scene.collector.history(key)

        screen = await open_changes_until_regressed(pilot, app, within=120)
        back = FirstTime(
            "every replica back",
            lambda: replicas_on(scene.pods, 3, scene.fast.port, scene.replicas),
        )
        try:
            run.undo_pressed_at = time.time()
            await pilot.press("U")
            await until(pilot, "the undo's plan", lambda: isinstance(app.screen, ConfirmUndo), 30)
            run.confirmed_at = time.time()
            await pilot.press("y")
            await until(pilot, "every replica back on revision 1's template", lambda: back.at, 180)
        finally:
            back.stop()
        run.undone_at = back.at
        run.problems += revision_2.problems + back.problems
        await wait_for_undo_row(pilot, screen, within=90)
        await pilot.pause(1.0)


def measured_fast(scene: Scene) -> bool:
    return replicas_on(scene.pods, 1, scene.fast.port, scene.replicas)


def one_run(scene: Scene, number: int) -> Run:
    run = Run(number, load=os.getloadavg()[0])
    deploy_on(scene.pods, NAME, scene.fast.port, scene.replicas)
    poll_until("the fast replicas up and led", lambda: measured_fast(scene), 180)
    poll_until("digits in the deck's cache", lambda: scene.backend.deployment(*scene.key), 60)
    load = scene.load(NAME)
    try:
        with load:
            poll_until("the load answered", lambda: any(a[2] for a in load.taken()), 60)
            if not scene.limit:
                with scene.load(PROBE) as probe:
                    limit = slo_between_the_predictors(
                        scene.pods, scene.backend, scene.collector, scene.slow
                    )
                    scene.limit = round(limit, 1)  # as a person would write it in a profile
                say(f"SLO p99 limit {scene.limit:.1f} ms ({len(probe.taken())} probe requests)")
            run.limit_ms = scene.limit
            profile = dataclasses.replace(
                scene.backend.profile, slo=SloSettings(p99_ms=scene.limit)
            )
            asyncio.run(scenario(scene, profile, run))
            # The collector's history from the first run on, kept in case the ring turned.
            latest = scene.collector.history(scene.key)
            seen = {m.at for m in run.history}
            run.history += [m for m in latest if m.at not in seen]
        run.problems += load.problems
    finally:
        result = scene.backend.actions.delete(scene.namespace, NAME)
        if not result.ok:
            say(f"deleting {NAME}: {result.message}")
        poll_until("the deployment gone", lambda: no_pods_left(scene), 180)
        poll_until("no longer measured", lambda: scene.key not in scene.collector.snapshot(), 60)
    analyse(run, load.taken(), scene)
    return run


def no_pods_left(scene: Scene) -> bool:
    selector = f"app.kubernetes.io/name={NAME}"
    core, namespace = scene.pods.core, scene.namespace
    return (
        scene.backend.deployment(*scene.key) is None
        and not core.list_namespaced_pod(namespace, label_selector=selector).items
        and not apps(scene.k8s)
        .list_namespaced_replica_set(namespace, label_selector=selector)
        .items
        and not core.list_namespaced_service(namespace, label_selector=selector).items
    )


def analyse(run: Run, answers: list[Answer], scene: Scene) -> None:
    limit = run.limit_ms / 1000
    run.answers = answers
    run.sent = len(answers)
    failed = [a for a in answers if not a[2]]
    run.failures, run.failed_why = len(failed), dict(Counter(a[4] for a in failed))
    after = [a for a in answers if a[0] > run.patch_at]
    slow = [a for a in after if a[3] == scene.slow.port and a[2] and a[0] < run.undo_pressed_at]
    if slow:
        run.first_slow_at, run.first_slow_ms = slow[0][0], slow[0][1] * 1000
        run.slow_ms = quantiles([a[1] for a in slow])
    over = [a for a in after if a[2] and a[1] > limit]
    if over:
        run.first_over_at, run.first_over_ms = over[0][0], over[0][1] * 1000
        run.first_over_by = "slow" if over[0][3] == scene.slow.port else "fast"
    before = [a[1] for a in answers if run.patch_at - FAST_S <= a[0] < run.patch_at and a[2]]
    run.answers_before, run.over_before = len(before), sum(1 for s in before if s > limit)
    run.fast_ms = quantiles(before)
    for metrics in run.history:
        p99 = metrics.p99_ms
        if metrics.at > run.patch_at and p99 is not None and p99 > run.limit_ms:
            run.crossing_at, run.crossing_p99_ms = metrics.at, p99
            break
        if run.first_slow_at and metrics.at >= run.first_slow_at and p99 is not None:
            run.p99_before_crossing.append(p99)
    refreshes = [m.at for m in run.history]
    run.refreshes_to_banner = sum(1 for at in refreshes if run.first_slow_at < at <= run.banner_at)
    run.refreshes_after_crossing = sum(
        1 for at in refreshes if run.crossing_at < at <= run.banner_at
    )
    during = [a for a in answers if run.undo_pressed_at <= a[0] <= run.undone_at + 1.0]
    undo_failed = [a for a in during if not a[2]]
    run.undo_requests, run.undo_failures = len(during), len(undo_failed)
    run.undo_failed_why = dict(Counter(a[4] for a in undo_failed))


# -- the report --------------------------------------------------------------------------------
def report(runs: list[Run], scene_note: str, setup_s: float, load_at_start: str) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def stat(values: list[float], digits: int = 2) -> str:
        return f"{statistics.median(values):.{digits}f} | {max(values):.{digits}f}"

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    after_slow = [r.banner_after_slow for r in runs]
    after_crossing = [r.banner_after_crossing for r in runs]
    crossing = [r.crossing_at - r.first_slow_at for r in runs]
    named = [r.named_at - r.banner_at for r in runs]
    undo = [r.undo_s for r in runs]
    to_back = [r.undone_at - r.confirmed_at for r in runs]
    failed = [float(r.undo_failures) for r in runs]
    counted = [float(r.refreshes_to_banner) for r in runs]
    counted_after = [float(r.refreshes_after_crossing) for r in runs]
    limits = sorted({f"{r.limit_ms:.1f}" for r in runs})
    lines = [
        f"### On call: a slow change named and undone (test cluster; {today}, "
        f"{os.cpu_count()} cores, load average at start {load_at_start})",
        "",
        f"`python -m bench.console.oncall_cluster --runs {len(runs)}`: {scene_note} "
        f"SLO p99 ≤ {' / '.join(limits)} ms (measured between the two predictors), metrics "
        f"window {WINDOW_S:.0f} s refreshed every {INTERVAL_S} s through the pod proxy. Setup "
        f"(training the model, the predictors, the namespace) {setup_s:.0f} s.",
        "",
        "| measure | median | max | goal | met (max) |",
        "|---|---|---|---|---|",
        f"| banner after the first answer by the slow predictor, s | {stat(after_slow)} | | |",
        f"| the same in metrics refreshes (counted) | {stat(counted, 0)} | | |",
        f"| first slow answer → the refresh whose window p99 is over the limit, s "
        f"| {stat(crossing)} | | |",
        f"| banner after that refresh, s | {stat(after_crossing)} "
        f"| ≤ {BANNER_GOAL_REFRESHES} refreshes ({BANNER_GOAL_REFRESHES * INTERVAL_S:.1f} s) "
        f"| {met(max(counted_after) <= BANNER_GOAL_REFRESHES)} |",
        f"| the same in refreshes after the crossing's (counted) | {stat(counted_after, 0)} "
        f"| ≤ {BANNER_GOAL_REFRESHES} | {met(max(counted_after) <= BANNER_GOAL_REFRESHES)} |",
        f"| banner → naming the change (“last change …”), s | {stat(named)} | | |",
        f"| undo: `U` on the change's row → every replica back on the first template, "
        f"available and led, s | {stat(undo)} | < {UNDO_GOAL_S:.0f} s (the local runtime's) "
        f"| {met(max(undo) < UNDO_GOAL_S)} |",
        f"| of which `y` → back, s | {stat(to_back)} | | |",
        f"| load requests failed during the undo | {stat(failed, 0)} | 0 "
        f"| {met(max(failed) == 0)} |",
        "",
        "| run | patch → revision 2 read, s | first answer by the slow predictor, s after the "
        "patch | first answer over the limit, s after the patch (predictor, ms) | answers p50 / "
        f"p99 ms, fast before · slow | fast answers over the limit, {FAST_S:.0f} s before "
        "| window p99 after the slow's first answer, before the crossing ms "
        "| window p99 at the crossing ms "
        "| banner after the slow's first / the crossing, s (refreshes) | undo s (`y` → back) "
        "| requests during the undo (failed) | requests in the run (failed) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.number} | {r.revision_2_at - r.patch_at:.2f} "
            f"| {r.first_slow_at - r.patch_at:.2f} "
            f"| {r.first_over_at - r.patch_at:.2f} ({r.first_over_by}, {r.first_over_ms:.0f}) "
            f"| {r.fast_ms[0]:.1f} / {r.fast_ms[1]:.1f} · {r.slow_ms[0]:.1f} / {r.slow_ms[1]:.1f} "
            f"| {r.over_before} of {r.answers_before} | {spread(r.p99_before_crossing)} "
            f"| {r.crossing_p99_ms:.1f} "
            f"| {r.banner_after_slow:.2f} ({r.refreshes_to_banner}) / "
            f"{r.banner_after_crossing:.2f} ({r.refreshes_after_crossing}) "
            f"| {r.undo_s:.2f} ({r.undone_at - r.confirmed_at:.2f}) "
            f"| {r.undo_requests} ({r.undo_failures}) | {r.sent} ({r.failures}) | {r.load:.2f} |"
        )
    why = Counter[str]()
    for r in runs:
        why.update(r.failed_why)
    failures = (
        "; ".join(f"{count} × {reason}" for reason, count in why.most_common()) if why else "none"
    )
    lines += [
        "",
        "How it was measured: the scene of `tests/e2e/tui/test_changes_kwok.py` (KWOK pods led "
        "to real predictors on this machine, the deck headless at 160×50 reading them through "
        "the API server's pod proxy), each run a Deployment of its own on the fast predictor, "
        "then the test's `kubectl patch` of its pod template's port to the slow predictor (a "
        "rollout by the deck's `u` would keep the port, and on KWOK the port is what picks the "
        "predictor); the undo is the deck's: `c`, `U` on the change's row, `y`. The load is the "
        "Service's clients as closely as this cluster allows: paced requests, each to one of "
        "the Service's ready endpoints (its EndpointSlices, as kube-proxy picks them), through "
        "the pod proxy, the one path here that fails when a pod is gone; the times are when "
        "answers came back. The slow predictor is the same model with a 60 ms batch window: "
        "slow, not failing, so the breach is on p99 alone. Failed requests over all runs: "
        f"{failures}. The banner's text in the last run: “{runs[-1].banner}”.",
        "",
        "What it means: the banner came with the refresh whose window p99 first crossed the "
        f"limit in {sum(1 for r in runs if r.refreshes_after_crossing == 0)} of {len(runs)} "
        f"runs (at most {max(counted_after):.0f} refreshes after it; the goal is "
        f"{BANNER_GOAL_REFRESHES}), {min(after_slow):.2f}–{max(after_slow):.2f} s after the "
        "slow predictor's first answer: the collector's first read of a new pod is its "
        "baseline, so a slow pod's answers count from its second read on, one or two "
        "refreshes after its first answer. The undo took "
        f"{min(undo):.2f}–{max(undo):.2f} s from `U` (the goal set for the local runtime is "
        f"{UNDO_GOAL_S:.0f} s), with {sum(r.undo_failures for r in runs)} of "
        f"{sum(r.undo_requests for r in runs)} requests failed meanwhile. On KWOK a pod is "
        "ready 0.5–1.5 s after it is made and its predictor is already warm, so this is the "
        "deck's part (the plan, the guard, the rollback) and the controllers': on a real "
        "cluster add the new pods' start, model load and readiness, and the old pods' drain. "
        "The answers' latencies are client side, through the API server, which adds a few "
        "ms to a typical answer and tens of ms to some (the "
        f"{' / '.join(str(r.over_before) for r in runs)} fast answers over the limit before "
        "the change, by run); the SLO is on the predictors' own histograms, as the deck "
        "reads them.",
    ]
    return "\n".join(lines)


def record(table: str) -> None:
    """The table under its own markers, right after the first of the ``AFTER`` sections."""
    readme.record(SECTION, table, "## Console", after=AFTER)


# -- main --------------------------------------------------------------------------------------
@contextlib.contextmanager
def predictors(
    folder: Path, model: TinyModel
) -> Iterator[tuple[PredictorProcess, PredictorProcess]]:
    started: list[PredictorProcess] = []
    try:
        for name, flags in (("fast", ()), ("slow", ("--batch-timeout-ms", BATCH_TIMEOUT_MS))):
            predictor = PredictorProcess(
                folder / f"{name}.log",
                "--cache-dir",
                str(folder / f"cache-{name}"),
                "--model-uri",
                str(model.version_dir),
                "--host",
                "0.0.0.0",  # the API server proxies to this machine's own address
                *flags,
            )
            started.append(predictor)
            predictor.wait_ready()
        yield started[0], started[1]
    finally:
        for predictor in started:
            predictor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2, help="the deployment's pods")
    parser.add_argument("--rate", type=float, default=20.0, help="load requests per second")
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    parser.add_argument("--answers", type=Path, help="write every run's answers here (JSON)")
    args = parser.parse_args()

    k8s = K8sCluster(Cluster(default_layout()), started_here=False)
    if not k8s.cluster.api_ready():
        sys.exit(f"the test cluster is not running ({k8s.kubeconfig}): tests/infra/cluster up")
    wanted = os.environ.get("KUBECONFIG")
    if wanted and Path(wanted).resolve() != k8s.kubeconfig.resolve():
        say(f"note: KUBECONFIG is {wanted}; the bench uses the test cluster's {k8s.kubeconfig}")

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    load_at_start = "/".join(f"{v:.2f}" for v in os.getloadavg())
    say(f"load average {load_at_start}")
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-oncall-cluster-"))
    namespace = f"bench-oncall-{secrets.token_hex(3)}"
    runs: list[Run] = []
    began = time.perf_counter()
    made = False
    try:
        (folder / "store").mkdir()
        model = train_tiny_model(folder / "store")
        say(f"model trained ({time.perf_counter() - began:.0f} s)")
        with predictors(folder, model) as (fast, slow):
            k8s.create_namespace(namespace)
            made = True
            say(f"namespace {namespace}; predictors fast :{fast.port}, slow :{slow.port}")
            backend = KubernetesBackend(
                load_profile("kwok"),
                api_client=k8s.api_client(),
                namespaces=[namespace],
                user="alice",
            )
            assert backend.start()
            try:
                pods = ProxiedPods(k8s, namespace)
                collector = MetricsCollector(
                    pod_proxy_source(backend), WINDOW_S, interval_s=INTERVAL_S
                )
                scene = Scene(
                    k8s, namespace, backend, pods, collector, model, fast, slow, folder,
                    args.replicas, args.rate,
                )  # fmt: skip
                setup_s = time.perf_counter() - began
                with LeadingPods(pods) as leading, collector:
                    for number in range(1, args.runs + 1):
                        try:
                            run = one_run(scene, number)
                        except (Exception, pytest.fail.Exception) as exc:  # the runs so far
                            say(f"run {number} failed: {''.join(format_exception(exc))}")
                            break
                        runs.append(run)
                        if args.answers:
                            kept = {
                                **dataclasses.asdict(run),
                                "history": [(m.at, m.p99_ms) for m in run.history],
                            }
                            path = args.answers.with_suffix(f".{number}.json")
                            path.write_text(json.dumps(kept, default=str))
                        say(
                            f"run {number}: banner {run.banner_after_slow:.2f} s after the slow "
                            f"predictor's first answer ({run.banner_after_crossing:.2f} s after "
                            f"the crossing); undo {run.undo_s:.2f} s, {run.undo_failures} of "
                            f"{run.undo_requests} failed"
                            + (f"; problems: {run.problems[:3]}" if run.problems else "")
                        )
                if leading.problems:
                    say(f"pods that refused their address: {leading.problems}")
            finally:
                backend.cache.stop()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
        if made:
            try:
                k8s.delete_namespace(namespace)
                wait_gone(k8s, namespace)
            except Exception as exc:  # the deletion was asked for: report, do not hide the run
                say(f"deleting namespace {namespace}: {exc!r}")
        k8s.close()
        shutil.rmtree(folder, ignore_errors=True)
    say(f"done in {time.perf_counter() - began:.0f} s")
    note = (
        f"{len(runs)} runs, each its own Deployment ({args.replicas} replicas) under "
        f"{args.rate:.0f} requests/s through the API server's pod proxy to the Service's "
        "endpoints;"
    )
    if not runs:
        sys.exit("no run finished")
    table = report(runs, note, setup_s, load_at_start)
    print(table)
    if args.write and len(runs) == args.runs:
        record(table)
    elif args.write:
        sys.exit(f"only {len(runs)} of {args.runs} runs finished: not recorded")


if __name__ == "__main__":
    main()
