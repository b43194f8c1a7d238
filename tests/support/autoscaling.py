"""Real autoscaling on the test cluster: the pipeline, predictors behind pods, load, Prometheus.

Reusable by any test that needs a Deployment to really scale (``tests/integration/autoscaling``
offers these as fixtures; a test folder elsewhere imports them into its conftest the same way):

- ``running_pipeline`` / the ``autoscaling_pipeline`` fixture: metrics-server and KEDA running
  beside the test cluster with their APIs registered (see ``tests/infra/k8s/autoscaling.py``);
  skips, or fails in CI, when they cannot run; stopped afterwards when no one else uses them.
- ``DiscoveringPrometheus`` / the ``autoscaling_prometheus`` fixture: Debian's real
  Prometheus, scraping whatever targets the tests register with the labels a relabelled
  ``kubernetes_sd`` pod job attaches (``namespace``, ``app_kubernetes_io_name``, ``pod``), so a
  KEDA Prometheus trigger (``request_rate_query``) reads it as it would a cluster's.
- ``PodPredictors``: one real predictor process per running pod of a Deployment, started when
  the pod appears (after a scale-up too) and stopped when it goes; the pod's IP is this
  machine's address, its predictor is registered with Prometheus under the pod's name.
- ``LoadDriver``: paced prediction requests spread over the predictors currently behind the
  pods, as a Service would spread them; bounded in time, it stops by itself.
- ``hpa_desired_replicas``: the HorizontalPodAutoscaler's own arithmetic, for expectations.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s.build import BuildError
from tests.infra.k8s.cluster import ClusterError
from tests.infra.k8s_fixtures import K8sCluster, first_line
from tests.infra.prometheus import PrometheusServer, ScrapeTarget, target_group
from tests.infra.require import missing_infra
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import machine_address

NAME_LABEL = "app.kubernetes.io/name"
# The predictor counts every answer in fleetdeck_predictor_requests_total, Prometheus' scrapes
# (protocol "metrics") and probes ("health") too: only predictions are load.
PREDICTION_PROTOCOLS = "v1|v2"
# The HorizontalPodAutoscaler controller's default tolerance (--horizontal-pod-autoscaler-
# tolerance): no change while the metric is within 10 % of its target.
HPA_TOLERANCE = 0.1


def hpa_desired_replicas(
    current: int, metric: float, target: float, tolerance: float = HPA_TOLERANCE
) -> int:
    """desired = ceil(current × metric / target), unchanged within the tolerance; ``metric``
    and ``target`` per pod (an average value, or a utilization in percent)."""
    ratio = metric / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def request_rate_query(namespace: str, deployment: str, window: str = "30s") -> str:
    """PromQL for a Deployment's predictions per second, all its pods together (KEDA's
    Prometheus trigger with an AverageValue target divides it by the replicas)."""
    selector = (
        f'namespace="{namespace}",app_kubernetes_io_name="{deployment}",'
        f'protocol=~"{PREDICTION_PROTOCOLS}"'
    )
    return f"sum(rate(fleetdeck_predictor_requests_total{{{selector}}}[{window}]))"


# -- the pipeline -----------------------------------------------------------------------------
def running_pipeline(k8s: K8sCluster) -> Iterator[AutoscalingPipeline]:
    """metrics-server and KEDA beside ``k8s``'s cluster for the session: started if needed,
    stopped at the end unless a person started them or another session still uses them."""
    pipeline = k8s.cluster.autoscaling()
    with pipeline.in_use():
        try:
            pipeline.up()
        except BuildError as error:
            missing_infra(f"cannot build metrics-server and KEDA: {first_line(error)}")
        except (ClusterError, OSError) as error:
            # The whole message: it carries the tail of the component's log that exited.
            missing_infra(f"cannot start the autoscaling pipeline: {error}")
        yield pipeline
    pipeline.stop_if_unused()


# -- Prometheus ---------------------------------------------------------------------------------
def running_prometheus(folder: Path) -> Iterator[DiscoveringPrometheus]:
    """A fixture's body: the tests' Prometheus in ``folder`` (scraping every second), stopped
    after."""
    prometheus = DiscoveringPrometheus(folder, interval_s=1.0)
    yield prometheus
    prometheus.stop()


class DiscoveringPrometheus(PrometheusServer):
    """A real Prometheus whose targets are a file it watches: register and forget targets while
    it runs (groups of targets by owner, so several tests share one server)."""

    def __init__(self, folder: Path, *, interval_s: float = 1.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.targets_file = folder / "targets.json"
        self._groups: dict[str, list[ScrapeTarget]] = {}
        self._lock = threading.Lock()
        self._write_targets()
        super().__init__(folder, (), interval_s=interval_s, files=[self.targets_file])

    def set_targets(self, owner: str, targets: Sequence[ScrapeTarget]) -> None:
        """Replace ``owner``'s targets (an empty list forgets them)."""
        with self._lock:
            if targets:
                self._groups[owner] = list(targets)
            else:
                self._groups.pop(owner, None)
            self._write_targets()

    def _write_targets(self) -> None:
        groups = [target_group(t) for targets in self._groups.values() for t in targets]
        # Written beside and renamed: Prometheus never reads half a file.
        partial = self.targets_file.with_suffix(".partial")
        partial.write_text(json.dumps(groups))
        os.replace(partial, self.targets_file)

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, None when it has none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def scraped_pods(self, namespace: str, deployment: str) -> set[str]:
        """The pods whose predictors answered the last scrape."""
        selector = f'namespace="{namespace}",app_kubernetes_io_name="{deployment}"'
        return {item["metric"]["pod"] for item in self.query(f"up{{{selector}}} == 1")}


# -- predictors behind pods ---------------------------------------------------------------------
class PodPredictors:
    """One real predictor per running pod of Deployment ``namespace/deployment``, for as long as
    the block runs.

    A background thread lists the Deployment's pods every ``poll_s``: a pod that runs and has no
    predictor gets one (``start_predictor()`` returns a ready predictor listening on every
    address), its status IP becomes this machine's address (as ``ProxiedPods`` does), and its
    predictor becomes a Prometheus target labelled with the pod's name; a pod that is gone or
    terminating loses its predictor. ``endpoints()`` are the predictors' URLs on loopback.
    """

    def __init__(
        self,
        k8s: K8sCluster,
        namespace: str,
        deployment: str,
        start_predictor: Callable[[], PredictorProcess],
        prometheus: DiscoveringPrometheus | None = None,
        *,
        poll_s: float = 0.5,
    ) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.deployment = deployment
        self.start_predictor = start_predictor
        self.prometheus = prometheus
        self.poll_s = poll_s
        self.address = machine_address()
        self.core: Any = client.CoreV1Api(k8s.api_client())
        self.predictors: dict[str, PredictorProcess] = {}
        self.problems: list[str] = []
        self.served: set[str] = set()  # every pod that ever had a predictor
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"predictors of {deployment}", daemon=True
        )

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.deployment}"

    def __enter__(self) -> PodPredictors:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        with self._lock:
            predictors, self.predictors = dict(self.predictors), {}
        if self.prometheus is not None:
            self.prometheus.set_targets(self.owner, [])
        for predictor in predictors.values():
            predictor.stop()

    def endpoints(self) -> list[str]:
        """Base URLs of the predictors behind the pods that run now."""
        with self._lock:
            return [predictor.url for _, predictor in sorted(self.predictors.items())]

    def pods(self) -> list[str]:
        with self._lock:
            return sorted(self.predictors)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._sync()
            except Exception as exc:  # the API server busy, a predictor slow: next time
                self.problems.append(f"{type(exc).__name__}: {first_line(exc)}")

    def _running_pods(self) -> dict[str, Any]:
        listed = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{NAME_LABEL}={self.deployment}"
        ).items
        return {
            pod.metadata.name: pod
            for pod in listed
            if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp
        }

    def _sync(self) -> None:
        running = self._running_pods()
        with self._lock:
            gone = [name for name in self.predictors if name not in running]
            leaving = {name: self.predictors.pop(name) for name in gone}
        if leaving:
            self._publish()
            for predictor in leaving.values():
                predictor.stop()
        for name, pod in sorted(running.items()):
            if self._stop.is_set():
                return
            with self._lock:
                if name in self.predictors:
                    continue
            predictor = self.start_predictor()
            self._lead(name, pod)
            with self._lock:
                self.predictors[name] = predictor
                self.served.add(name)
            self._publish()

    def _lead(self, name: str, pod: Any) -> None:
        """The pod's IP becomes this machine's address, where its predictor listens."""
        if pod.status.pod_ip == self.address:
            return
        body = {"status": {"podIP": self.address, "podIPs": [{"ip": self.address}]}}
        # A merge patch replaces the IP list (a strategic one would add to it).
        self.core.patch_namespaced_pod_status(
            name, self.namespace, body, _content_type="application/merge-patch+json"
        )

    def _publish(self) -> None:
        if self.prometheus is None:
            return
        with self._lock:
            targets = [
                ScrapeTarget(self.namespace, self.deployment, pod, f"127.0.0.1:{p.port}")
                for pod, p in sorted(self.predictors.items())
            ]
        self.prometheus.set_targets(self.owner, targets)


# -- load -------------------------------------------------------------------------------------
class LoadDriver:
    """``rate`` prediction requests per second in total, spread round-robin over
    ``endpoints()`` (read again for every request, so new pods take their share at once), from
    ``workers`` threads; stops when asked or after ``limit_s`` (a test that forgets it never
    leaves a load running). ``failures`` keeps every answer other than 200 and every error."""

    def __init__(
        self,
        endpoints: Callable[[], Sequence[str]],
        model: str,
        body: dict[str, Any],
        rate: float,
        *,
        workers: int = 4,
        limit_s: float = 900.0,
    ) -> None:
        self.endpoints = endpoints
        self.path = f"/v1/models/{model}:predict"
        self.body = body
        self.rate = rate
        self.limit_s = limit_s
        self.sent = 0
        self.answered = 0
        self.failures: list[str] = []
        self._slot = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"load {i}", daemon=True)
            for i in range(workers)
        ]
        self._started = 0.0

    def __enter__(self) -> LoadDriver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LoadDriver:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _next(self) -> tuple[float, int]:
        """The next request's due time and its number (which picks the endpoint)."""
        with self._lock:
            slot = self._slot
            self._slot += 1
        return self._started + slot / self.rate, slot

    def _run(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                due, slot = self._next()
                if due - self._started > self.limit_s:
                    return
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                urls = self.endpoints()
                if not urls:
                    continue  # no pod has a predictor yet: this slot is skipped
                url = urls[slot % len(urls)] + self.path
                try:
                    answer = http.post(url, json=self.body, timeout=10)
                    failure = "" if answer.status_code == 200 else f"{answer.status_code}"
                except requests.RequestException as exc:
                    failure = type(exc).__name__
                with self._lock:
                    self.sent += 1
                    if failure:
                        self.failures.append(f"{url}: {failure}")
                    else:
                        self.answered += 1
