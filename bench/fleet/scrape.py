"""Scrape cost: refreshing N predictors' metrics through the pod proxy, directly, or from
one Prometheus query.

    python -m bench.fleet.scrape [--targets 500] [--refreshes 10] [--concurrency 32] [--record]

Against the test cluster (``tests/infra/cluster up``) and Debian's ``prometheus``. N real
metrics endpoints serve the page a real predictor serves (``serving.metrics.PredictorMetrics``
under a steady stream of observations), one port each, from one helper process; N one-pod
Deployments on KWOK declare those ports and get this machine's address as their pod IP, so the
API server's pod proxy reaches real listeners; a Prometheus server scrapes the same N
endpoints. Each source then runs ``--refreshes`` collector refreshes; reported per refresh:
wall time (median, p90), the console's CPU (all its threads), the API server's CPU, and
targets that failed. The pod proxy is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_KUBECONFIG = Path.home() / ".cache/fleetdeck/run/cluster/kubeconfig"
APISERVER_PID = Path.home() / (
    ".cache/fleetdeck/run/cluster/kwok/clusters/fleetdeck/pids/kube-apiserver.pid"
)
NAME_LABEL = "app.kubernetes.io/name"
# Simulated nodes of the benchmark's own, tainted so only its pods land there: the shared
# cluster's nodes keep their room for the tests running beside it.
BENCH_POOL = {"fleetdeck.io/pool": "bench-scrape"}
BENCH_TAINT = {"key": "fleetdeck.io/bench", "value": "scrape", "effect": "NoSchedule"}
PODS_PER_NODE = 110


# -- the endpoints: one process, N ports, a real predictor's page -----------------------------
def serve_endpoints(count: int, host: str) -> None:
    """Listen on ``count`` ports, print them on one line, serve /metrics until SIGTERM."""
    from aiohttp import web

    from serving.metrics import PredictorMetrics

    metrics = PredictorMetrics()
    metrics.ready.set(1)
    page = [metrics.exposition()]

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=page[0], content_type="text/plain", charset="utf-8")

    async def traffic() -> None:
        # A predictor answering ~20 req/s with ms latencies, so rates and percentiles move.
        step = 0
        while True:
            for i in range(20):
                metrics.observe_request("v1", 200, 0.002 + 0.0005 * ((step + i) % 13))
                metrics.observe_batch(1, 0.0004)
            page[0] = metrics.exposition()
            step += 1
            await asyncio.sleep(1.0)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/metrics", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports = []
        for _ in range(count):
            site = web.TCPSite(runner, host, 0, backlog=64)
            await site.start()
            server: Any = site._server
            ports.append(server.sockets[0].getsockname()[1])
        print(" ".join(map(str, ports)), flush=True)
        task = asyncio.create_task(traffic())
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        task.cancel()
        await runner.cleanup()

    asyncio.run(main())


def machine_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])


# -- the fleet on KWOK ---------------------------------------------------------------------
def deployment(name: str, port: int) -> dict[str, Any]:
    labels = {NAME_LABEL: name, "app.kubernetes.io/managed-by": "fleetdeck"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {NAME_LABEL: name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": BENCH_POOL,
                    "tolerations": [{**BENCH_TAINT, "operator": "Equal"}],
                    "containers": [
                        {
                            "name": "predictor",
                            "image": "predictor:1",
                            "ports": [{"name": "http", "containerPort": port}],
                        }
                    ],
                },
            },
        },
    }


def bench_nodes(count: int) -> list[dict[str, Any]]:
    nodes = -(-count // (PODS_PER_NODE - 10))
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-bench-scrape-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/os": "linux", **BENCH_POOL},
            },
            "spec": {"taints": [BENCH_TAINT]},
        }
        for i in range(nodes)
    ]


def make_fleet(api_client: Any, namespace: str, ports: list[int], address: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    core.create_namespace({"metadata": {"name": namespace}})
    for node in bench_nodes(len(ports)):
        core.create_node(node)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: apps.create_namespaced_deployment(
                    namespace, deployment(f"model-{i}", ports[i])
                ),
                range(len(ports)),
            )
        )
    print(f"scrape: {len(ports)} deployments created; waiting for their pods", file=sys.stderr)
    deadline = time.monotonic() + 600
    while True:
        pods = core.list_namespaced_pod(namespace).items
        running = [p for p in pods if p.status.phase == "Running"]
        if len(running) >= len(ports):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(running)} of {len(ports)} pods running")
        time.sleep(2)
    body = {"status": {"podIP": address, "podIPs": [{"ip": address}]}}

    def lead(pod: Any) -> None:
        core.patch_namespaced_pod_status(
            pod.metadata.name, namespace, body, _content_type="application/merge-patch+json"
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lead, running))


# -- measuring ------------------------------------------------------------------------------
def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, collector: Any, refreshes: int, apiserver: int | None) -> dict[str, Any]:
    collector.refresh()  # warm: connections, first windows
    walls, cpus, server_cpus, failed = [], [], [], []
    for _ in range(refreshes):
        time.sleep(collector.interval_s)
        cpu, server = time.process_time(), process_cpu(apiserver) if apiserver else 0.0
        began = time.perf_counter()
        collector.refresh()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
        server_cpus.append(process_cpu(apiserver) - server if apiserver else 0.0)
        snapshot = collector.snapshot()
        failed.append(sum(m.pods_failed for m in snapshot.values()))
        measured = len(snapshot)
    walls.sort()
    return {
        "source": name,
        "deployments": measured,
        "wall_p50": statistics.median(walls),
        "wall_p90": walls[min(len(walls) - 1, int(0.9 * len(walls)))],
        "cpu": statistics.mean(cpus),
        "server_cpu": statistics.mean(server_cpus),
        "failed": max(failed),
    }


def wait_for(what: str, check: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(1)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, started: str) -> str:
    base = rows[0]
    lines = [
        f"### Metrics refresh cost ({started}, 2 cores shared; {args.targets} predictors' "
        f"/metrics pages, scrape concurrency {args.concurrency}, timeout {args.timeout:g} s, "
        f"{args.refreshes} refreshes; Prometheus scraping every 5 s)",
        "",
        "| source | deployments | wall p50 | wall p90 | console CPU / refresh "
        "| API server CPU / refresh | failed targets | wall vs pod proxy "
        "| console CPU vs pod proxy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['source']} | {row['deployments']} | {1000 * row['wall_p50']:.0f} ms "
            f"| {1000 * row['wall_p90']:.0f} ms | {1000 * row['cpu']:.0f} ms "
            f"| {1000 * row['server_cpu']:.0f} ms | {row['failed']} "
            f"| {row['wall_p50'] / base['wall_p50']:.2f} × | {row['cpu'] / base['cpu']:.2f} × |"
        )
    lines += [
        "",
        "Pod proxy: one GET per pod through the API server (which opens a connection to each "
        "pod); direct: one GET per pod from the console; Prometheus: one instant query for the "
        "whole fleet (the server scrapes on its own schedule, outside the refresh). CPU is "
        "`time.process_time()` of the console process (all threads) and `/proc` of "
        "kube-apiserver.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--refreshes", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16, help="the profile default: 16")
    parser.add_argument("--timeout", type=float, default=2.0, help="per target; default 2 s")
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG))
    )
    parser.add_argument("--record", action="store_true", help="write the table to bench/README.md")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the endpoints process
    parser.add_argument("--host", default="0.0.0.0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_endpoints(args.serve, args.host)
        return

    from kubernetes import config

    from console.backends.kubernetes.backend import KubernetesBackend
    from console.metrics import (
        MetricsCollector,
        PrometheusSource,
        Source,
        pod_proxy_source,
        static_source,
    )
    from console.profile import load_profile
    from tests.infra.prometheus import PrometheusServer, ScrapeTarget

    started = time.strftime("%Y-%m-%d")
    address = machine_address()
    namespace = f"bench-scrape-{secrets.token_hex(3)}"
    endpoints = subprocess.Popen(
        [sys.executable, "-m", "bench.fleet.scrape", "--serve", str(args.targets)],
        stdout=subprocess.PIPE,
        text=True,
    )
    api_client = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    folder = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    prometheus = None
    backend = None
    try:
        assert endpoints.stdout is not None
        ports = [int(p) for p in endpoints.stdout.readline().split()]
        make_fleet(api_client, namespace, ports, address)
        keys = [((namespace, f"model-{i}"), f"model-{i}", port) for i, port in enumerate(ports)]
        prometheus = PrometheusServer(
            folder,
            [ScrapeTarget(ns, name, pod, f"127.0.0.1:{port}") for (ns, name), pod, port in keys],
            interval_s=5.0,  # 500 targets every 5 s: gentle on 2 shared cores
        )
        wait_for(
            "Prometheus to scrape every endpoint", lambda: prometheus.targets_up() >= len(ports)
        )
        profile = load_profile("kwok")
        backend = KubernetesBackend(profile, api_client=api_client, namespaces=[namespace])
        backend.start(timeout=120)
        wait_for("the cache", lambda: len(backend.deployments()) >= len(ports))
        apiserver = int(APISERVER_PID.read_text()) if APISERVER_PID.exists() else None
        window, interval = 30.0, 2.0
        sources: list[tuple[str, Source]] = [
            (
                "pod proxy",
                pod_proxy_source(backend, concurrency=args.concurrency, timeout_s=args.timeout),
            ),
            (
                "direct",
                static_source(
                    lambda: [(k, pod, f"http://127.0.0.1:{port}") for k, pod, port in keys],
                    concurrency=args.concurrency,
                    timeout_s=args.timeout,
                ),
            ),
            ("Prometheus (1 query)", PrometheusSource(prometheus.url, timeout_s=30)),
        ]
        rows = []
        for name, source in sources:
            collector = MetricsCollector(source, window, interval_s=interval)
            print(f"scrape: measuring {name}", file=sys.stderr)
            rows.append(measure(name, collector, args.refreshes, apiserver))
            collector.stop()
        table = report(rows, args, started)
        print(table)
        if args.record:
            from bench.readme import record

            record("fleet-scrape", table, "## Fleet")
    finally:
        if backend is not None:
            backend.cache.stop()
        if prometheus is not None:
            prometheus.stop()
        endpoints.terminate()
        endpoints.wait(30)
        from kubernetes import client

        core: Any = client.CoreV1Api(api_client)
        core.delete_namespace(namespace)
        for node in bench_nodes(args.targets):
            try:
                core.delete_node(node["metadata"]["name"])
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise


if __name__ == "__main__":
    main()
