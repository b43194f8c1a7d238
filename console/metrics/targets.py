"""Scrape targets and fetches for each backend: plain HTTP, and the Kubernetes pod proxy.

Which deployments are scraped: every one when nothing is wanted in particular (``None``);
otherwise the wanted ones (what the screen shows) plus every deployment in a rollout, since
the batch engine gates on those whether they are visible or not.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import urllib3

from console.metrics.readings import Key
from console.metrics.scrape import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    ScrapeError,
    ScrapeSource,
    Target,
)
from console.metrics.sources import Wanted
from console.model import DeploymentState

Endpoints = Callable[[str, str], Sequence[tuple[str, str]]]  # (ns, name) -> [(pod, base URL)]


def chosen_keys(backend: Any, wanted: Wanted) -> list[Key]:
    """The deployments to scrape: the wanted ones plus those rolling out (all when None)."""
    keys = []
    for deployment in backend.deployments():
        key = deployment.key
        if wanted is None or key in wanted or deployment.state is DeploymentState.PROGRESSING:
            keys.append(key)
    return keys


# -- plain HTTP (the local runtime, or any reachable predictors) ----------------------------
class HttpFetch:
    """GET a target's ``address`` over a shared connection pool, no retries."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self._http = urllib3.PoolManager(maxsize=concurrency, retries=False, block=False)

    def __call__(self, target: Target, timeout_s: float) -> str:
        try:
            answer = self._http.request(
                "GET",
                target.address,
                timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ScrapeError(f"{target.address}: {_reason(exc)}") from None
        if answer.status != 200:
            raise ScrapeError(f"{target.address}: HTTP {answer.status}")
        return answer.data.decode("utf-8", errors="replace")

    def close(self) -> None:
        self._http.clear()


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError is a ConnectTimeoutError in urllib3: ask about it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def endpoint_targets(key: Key, endpoints: Iterable[tuple[str, str]]) -> list[Target]:
    return [Target(key, pod, base.rstrip("/") + "/metrics") for pod, base in endpoints]


def _scraped_by_http(
    discover: Callable[[Wanted], tuple[list[Target], set[Key]]], concurrency: int, timeout_s: float
) -> ScrapeSource:
    """A source that scrapes what ``discover`` finds straight over HTTP."""
    fetch = HttpFetch(concurrency)
    return ScrapeSource(
        "direct",
        discover,
        fetch,
        concurrency=concurrency,
        timeout_s=timeout_s,
        on_close=fetch.close,
    )


def direct_source(
    backend: Any,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ScrapeSource:
    """Each predictor's ``/metrics`` by HTTP, found through ``backend.endpoints(ns, name)``
    (the local runtime's predictors listen on this machine)."""

    def discover(wanted: Wanted) -> tuple[list[Target], set[Key]]:
        keys = chosen_keys(backend, wanted)
        targets = [t for key in keys for t in endpoint_targets(key, backend.endpoints(*key))]
        return targets, set(keys)

    return _scraped_by_http(discover, concurrency, timeout_s)


def static_source(
    targets: Callable[[], Sequence[tuple[Key, str, str]]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ScrapeSource:
    """Direct scrapes of a given list of ``(key, pod, base URL)``: benchmarks, tests, and
    predictors run outside any backend."""

    def discover(wanted: Wanted) -> tuple[list[Target], set[Key]]:
        chosen = [
            Target(key, pod, url.rstrip("/") + "/metrics")
            for key, pod, url in targets()
            if wanted is None or key in wanted
        ]
        return chosen, {t.key for t in chosen}

    return _scraped_by_http(discover, concurrency, timeout_s)


# -- the Kubernetes API server's pod proxy ---------------------------------------------------
class PodProxyFetch:
    """``GET /api/v1/namespaces/{ns}/pods/{pod}[:port]/proxy/metrics`` through the API server:
    the bastion needs no network path to the pods, only the API (and ``get pods/proxy``).

    Without a port the API server picks the pod's first declared container port, which in
    fleetdeck's template is the predictor's ``http`` port.
    """

    def __init__(
        self, api_client: Any, *, port: int | None = None, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        from kubernetes import client

        # A client of its own, its pool as large as the scrape concurrency (urllib3 otherwise
        # drops the extra connections and reconnects every time).
        configuration = copy.deepcopy(api_client.configuration)
        configuration.connection_pool_maxsize = concurrency + 2
        self.api_client = client.ApiClient(configuration)
        self.core: Any = client.CoreV1Api(self.api_client)
        self.port = port

    def __call__(self, target: Target, timeout_s: float) -> str:
        from kubernetes.client.exceptions import ApiException

        namespace = target.key[0]
        name = f"{target.pod}:{self.port}" if self.port else target.pod
        try:
            answer = self.core.connect_get_namespaced_pod_proxy_with_path(
                name,
                namespace,
                "metrics",
                _request_timeout=(timeout_s, timeout_s),
                _preload_content=False,
            )
        except ApiException as exc:
            raise ScrapeError(_api_reason(exc)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ScrapeError(f"API server: {_reason(exc)}") from None
        return str(answer.data.decode("utf-8", errors="replace"))

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]


def _api_reason(exc: Any) -> str:
    body = (getattr(exc, "body", None) or "").strip()
    detail = body.splitlines()[0][:200] if body else (exc.reason or "")
    with contextlib.suppress(ValueError, AttributeError):
        detail = json.loads(body).get("message", detail)
    if exc.status == 403 and "pods/proxy" in detail:
        detail += (
            " (metrics through the pod proxy need `get pods/proxy`; or name a Prometheus"
            " in the profile: [metrics] prometheus_url)"
        )
    return f"HTTP {exc.status}: {detail}"


def pod_proxy_source(
    backend: Any,
    *,
    port: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ScrapeSource:
    """Every running predictor pod of the Kubernetes backend, through the pod proxy."""

    def discover(wanted: Wanted) -> tuple[list[Target], set[Key]]:
        keys = chosen_keys(backend, wanted)
        targets = [
            Target(key, pod.name, f"pod proxy {key[0]}/{pod.name}")
            for key in keys
            for pod in backend.pods(*key)
            if pod.phase == "Running"
        ]
        return targets, set(keys)

    fetch = PodProxyFetch(backend.api_client, port=port, concurrency=concurrency)
    return ScrapeSource(
        "pod-proxy",
        discover,
        fetch,
        concurrency=concurrency,
        timeout_s=timeout_s,
        on_close=fetch.close,
    )
