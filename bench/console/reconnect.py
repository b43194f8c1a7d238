"""How soon the fleet cache knows: after an API server restart, and when the server hangs.

Side by side on the test cluster (``tests/infra/cluster up``), the cache with its server probe
against the same cache without it (the watches alone, as before the probe):
- **back**: kube-apiserver killed, down ``--down`` seconds (a slow restart), started again;
  seconds from the server answering ``/readyz`` to the cache being live, and to a Pod created
  then being in the cache;
- **hung**: kube-apiserver stopped with SIGSTOP (connections accepted, never answered); seconds
  until the cache says it is not live (given up after ``--hang-limit``), then SIGCONT.

    tests/infra/cluster up --name b    # a cluster no test uses: its API server is stopped
    python -m bench.console.reconnect --runs 3 --cluster b
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client

from console.backends.kubernetes.cache import FleetCache, Kind, ProbeSettings
from tests.infra.k8s.cluster import Cluster
from tests.infra.k8s.layout import default_layout
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.k8s_objects import bare_pod

NAMESPACE = f"bench-reconnect-{secrets.token_hex(3)}"


def wait_for(check: Callable[[], bool], limit: float, since: float | None = None) -> float | None:
    """Seconds from ``since`` (default: now) until ``check()`` holds, or None after ``limit``."""
    started = time.monotonic() if since is None else since
    while time.monotonic() - started < limit:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def answers(api: Any) -> bool:
    """/readyz is 200, asked without retries and with a short timeout."""
    try:
        method, url, headers, _, _ = api.param_serialize(
            "GET", "/readyz", auth_settings=["BearerToken"]
        )
        response = api.rest_client.pool_manager.request(
            method, url, headers=headers, timeout=urllib3.Timeout(1.0, 1.0), retries=False
        )
    except Exception:
        return False
    return int(response.status) == 200


def back(
    cluster: K8sCluster, probe: ProbeSettings | None, run: int, down: float
) -> tuple[float, float]:
    """Seconds from the server answering /readyz again to the cache live, and to a pod made
    then being in the cache; the server is down ``down`` seconds (a slow restart)."""
    cache = FleetCache(cluster.api_client(), [NAMESPACE], [Kind.PODS], probe=probe)
    cache.start()
    try:
        assert cache.wait_synced(60)
        cluster.stop_apiserver()
        wait_for(lambda: not cache.connection.live, 60)
        time.sleep(down)
        starting = threading.Thread(target=cluster.start_apiserver)
        starting.start()
        prober = cluster.api_client()
        if wait_for(lambda: answers(prober), 180) is None:
            raise RuntimeError("the API server never answered")
        answered = time.monotonic()
        name = f"after-{run}-{'probe' if probe else 'watches'}"
        pods = client.CoreV1Api(cluster.api_client())
        pods.create_namespaced_pod(NAMESPACE, bare_pod(name))  # type: ignore[arg-type]
        live = wait_for(lambda: cache.connection.live, 180, answered)
        seen = wait_for(lambda: cache.get(Kind.PODS, NAMESPACE, name) is not None, 180, answered)
        starting.join()
        if live is None or seen is None:
            raise RuntimeError("the cache never came back")
        return live, seen
    finally:
        cache.stop()


def hung(cluster: K8sCluster, probe: ProbeSettings | None, limit: float) -> float | None:
    cache = FleetCache(cluster.api_client(), [NAMESPACE], [Kind.PODS], probe=probe)
    cache.start()
    try:
        assert cache.wait_synced(60)
        wait_for(lambda: cache.connection.live, 30)
        with cluster.frozen_apiserver():
            return wait_for(lambda: not cache.connection.live, limit)
    finally:
        cache.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hang-limit", type=float, default=60.0)
    parser.add_argument("--down", type=float, default=20.0, help="seconds the API server is down")
    parser.add_argument(
        "--cluster",
        default=None,
        help="a named test cluster (tests/infra/cluster up --name NAME): its API server is "
        "stopped and frozen, so use one no test is using",
    )
    args = parser.parse_args()
    layout = default_layout()
    if args.cluster:
        layout = dataclasses.replace(layout, name=args.cluster)
    cluster = K8sCluster(Cluster(layout), started_here=False)
    cluster.create_namespace(NAMESPACE)
    variants: dict[str, ProbeSettings | None] = {"probe": ProbeSettings(), "watches only": None}
    rows = []
    for label, probe in variants.items():
        backs = [back(cluster, probe, run, args.down) for run in range(args.runs)]
        hangs = [hung(cluster, probe, args.hang_limit) for _ in range(args.runs)]
        rows.append((label, backs, hangs))
        print(label, backs, hangs, flush=True)
    print()
    print(
        "| cache | live after restart s (median, max) | new pod seen s (median, max) "
        f"| hung server noticed s (median, max; limit {args.hang_limit:.0f}) |"
    )
    print("|---|---|---|---|")

    def cell(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            return f"not within the limit in {len(values) - len(known)} of {len(values)}"
        return f"{statistics.median(known):.1f}, {max(known):.1f}"

    cluster.delete_namespace(NAMESPACE)
    for label, backs, hangs in rows:
        print(
            f"| {label} | {cell([b[0] for b in backs])} | {cell([b[1] for b in backs])} "
            f"| {cell(list(hangs))} |"
        )


if __name__ == "__main__":
    main()
