"""A fleet rollout in waves: fleetdeck's batch engine against a kubectl shell loop.

    python -m bench.fleet.rollout [--count 1000] [--waves 10%,100%] [--max-parallel 50]
                                  [--kubectl-sample 50] [--record]

Against the test cluster (``tests/infra/cluster up``). ``--count`` one-replica predictor
Deployments on KWOK nodes of the benchmark's own (tainted: the shared nodes keep their room),
all Available first. fleetdeck then rolls every one to model version 2 exactly as
``fleetdeck rollout -l ... --waves W --max-parallel N --bake 0`` does (cache sync, RBAC and
read-only checks, a server-side dry run of the whole plan, the journal, each wave patched and
watched until every rollout finished), in this process so that its API requests and its CPU
(all threads, the watch cache included) are counted. The baseline is the loop an operator
would write, ``kubectl set image`` then ``kubectl rollout status`` per Deployment, over the
first ``--kubectl-sample`` of them, extrapolated to ``--count`` (said so in the table); its
requests are counted from ``kubectl -v=6``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DEFAULT_KUBECONFIG = Path.home() / ".cache/fleetdeck/run/cluster/kubeconfig"
KUBECTL = Path.home() / ".cache/fleetdeck/k8s/v1.36.3/bin/kubectl"
BENCH_POOL = {"fleetdeck.io/pool": "bench-rollout"}
BENCH_TAINT = {"key": "fleetdeck.io/bench", "value": "rollout", "effect": "NoSchedule"}
PODS_PER_NODE = 110
SELECTOR = "fleetdeck.io/model=bench"
# One line per request at -v=6 (klog): `"Response" verb="GET" url=...` in current versions.
KUBECTL_REQUEST = re.compile(r'"Response" verb="|round_trippers\.go:\d+\] (GET|PATCH|PUT|POST) ')


def deployment(name: str, replicas: int = 1, model: str = "bench") -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "fleetdeck",
        "fleetdeck.io/model": model,
        "fleetdeck.io/model-version": "1",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "predictor", "image": "fleetdeck-predictor:bench"}],
                    "nodeSelector": BENCH_POOL,
                    "tolerations": [{**BENCH_TAINT, "operator": "Equal"}],
                },
            },
        },
    }


def bench_nodes(pods: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-bench-rollout-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/os": "linux", **BENCH_POOL},
            },
            "spec": {"taints": [BENCH_TAINT]},
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
            },
        }
        for i in range(-(-pods // (PODS_PER_NODE - 10)))
    ]


def make_fleet(
    api_client: Any, namespace: str, count: int, idle: int = 0, who: str = "rollout bench"
) -> list[str]:
    """``count`` one-replica Deployments of model ``bench`` (their names returned) and ``idle``
    replicas-0 ones of model ``bench-idle`` (not matched by ``SELECTOR``), all available."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    core.create_namespace({"metadata": {"name": namespace}})
    for node in bench_nodes(2 * count):  # room for the surge pod of every rollout at once
        core.create_node(node)
    names = [f"model-{i:04}" for i in range(count)]
    manifests = [deployment(n) for n in names]
    manifests += [deployment(f"idle-{i:04}", 0, "bench-idle") for i in range(idle)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda d: apps.create_namespaced_deployment(namespace, d), manifests))
    wait_available(apps, namespace, count + idle, "created", who)
    return names


def wait_available(
    apps: Any, namespace: str, count: int, what: str, who: str = "rollout bench"
) -> None:
    deadline = time.monotonic() + 900
    while True:
        items = apps.list_namespaced_deployment(namespace).items
        done = [
            d
            for d in items
            if (d.status.observed_generation or 0) >= d.metadata.generation
            and (d.status.updated_replicas or 0) == d.spec.replicas
            and (d.status.available_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
        ]
        if len(done) >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(done)} of {count} deployments {what} and available")
        print(f"{who}: {len(done)}/{count} {what}", file=sys.stderr)
        time.sleep(3)


def cleanup(api_client: Any, namespace: str) -> None:
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    core.delete_namespace(namespace)
    for node in core.list_node(label_selector="fleetdeck.io/pool=bench-rollout").items:
        core.delete_node(node.metadata.name)


# -- fleetdeck --------------------------------------------------------------------------------
@dataclasses.dataclass
class Counted:
    """API requests by the console's client (watches count once: one long request each)."""

    total: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def wrap(self, api_client: Any) -> None:
        rest = api_client.rest_client
        request = rest.request

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.total += 1
            return request(*args, **kwargs)

        rest.request = counted


@dataclasses.dataclass
class FleetdeckRun:
    wall_s: float
    cpu_s: float
    sync_s: float
    dry_run_s: float
    batch_s: float
    requests: int
    dry_run_requests: int
    batch_requests: int
    state: str


def run_fleetdeck(
    kubeconfig: Path, namespace: str, waves: str, max_parallel: int, folder: Path
) -> FleetdeckRun:
    from console.backends.kubernetes.backend import KubernetesBackend, api_client_for
    from console.batch import preflight
    from console.batch.executor import BatchExecutor, dry_run
    from console.batch.journal import Journal
    from console.batch.plan import make_plan, settings_from
    from console.batch.runner import ActionSpec, AuditContext
    from console.core.guard import Guard
    from console.profile import KubernetesSettings, StoreSettings, load_profile

    profile = dataclasses.replace(
        load_profile("kwok"),
        kubernetes=KubernetesSettings("kwok-admin", kubeconfig, (namespace,)),
        store=StoreSettings(root=str(folder / "store")),
    )
    counted = Counted()
    cpu0, t0 = time.process_time(), time.perf_counter()
    # The pool as the CLI sizes it: one connection per watch and per request in flight, plus 8.
    api_client = api_client_for(profile, None, watchers=5, parallel=max_parallel)
    counted.wrap(api_client)
    backend = KubernetesBackend(profile, api_client=api_client, user="kwok-admin")
    try:
        if not backend.start(timeout=120):
            raise TimeoutError("the fleet cache did not sync")
        t_sync = time.perf_counter()
        targets = [row.key for row in backend.deployments(SELECTOR)]
        settings = settings_from(
            profile, waves=waves, max_parallel=max_parallel, halt_after="1", bake=0
        )
        plan = make_plan(ActionSpec("rollout", version=2, verify=False), targets, settings)
        if problems := preflight.problems(backend, plan, Guard(backend, False, "kwok", "bench")):
            raise RuntimeError("; ".join(problems))
        before_dry = counted.total
        checked = dry_run(backend, plan.spec, plan.targets, plan.max_parallel)
        if not all(r.ok for r in checked):
            raise RuntimeError(next(r.message for r in checked if not r.ok))
        t_dry, dry_requests = time.perf_counter(), counted.total - before_dry
        journal = Journal.create(plan, {"profile": "kwok", "user": "bench"}, folder / "batches")
        audit = AuditContext("kwok", "kwok-admin", "bench", path=folder / "audit.jsonl")
        state = BatchExecutor(backend, journal, audit_context=audit).run()
        t1, cpu1 = time.perf_counter(), time.process_time()
        return FleetdeckRun(
            wall_s=t1 - t0,
            cpu_s=cpu1 - cpu0,
            sync_s=t_sync - t0,
            dry_run_s=t_dry - t_sync,
            batch_s=t1 - t_dry,
            requests=counted.total,
            dry_run_requests=dry_requests,
            batch_requests=counted.total - before_dry - dry_requests,
            state=f"{state.state.value}, {len(state.failed)} failed",
        )
    finally:
        backend.close()


# -- kubectl ----------------------------------------------------------------------------------
@dataclasses.dataclass
class KubectlRun:
    sample: int
    wall_s: float
    cpu_s: float
    requests: int


def run_kubectl(kubeconfig: Path, namespace: str, names: list[str]) -> KubectlRun:
    """The loop an operator writes: ``set image`` then ``rollout status``, one at a time."""
    import resource

    requests = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for name in names:
        for command in (
            ["set", "image", f"deployment/{name}", "predictor=fleetdeck-predictor:bench-2"],
            ["rollout", "status", f"deployment/{name}", "--timeout=300s"],
        ):
            done = subprocess.run(
                [str(KUBECTL), f"--kubeconfig={kubeconfig}", "-n", namespace, "-v=6", *command],
                capture_output=True,
                text=True,
                check=True,
            )
            requests += sum(1 for line in done.stderr.splitlines() if KUBECTL_REQUEST.search(line))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return KubectlRun(len(names), wall, cpu, requests)


# -- report -----------------------------------------------------------------------------------
def report(
    count: int, waves: str, max_parallel: int, ours: FleetdeckRun, loop: KubectlRun, load: str
) -> str:
    scale = count / loop.sample
    loop_wall = loop.wall_s * scale
    lines = [
        f"{count} one-replica Deployments on KWOK, every one rolled to a new template; "
        f"machine load average at start: {load}.",
        "",
        "| | wall | per deployment | API requests / deployment | client CPU |",
        "|---|---|---|---|---|",
        f"| fleetdeck rollout --waves {waves} --max-parallel {max_parallel} --bake 0 "
        f"| {ours.wall_s:.1f} s | {1000 * ours.wall_s / count:.0f} ms "
        f"| {ours.requests / count:.2f} "
        f"| {ours.cpu_s:.1f} s ({100 * ours.cpu_s / ours.wall_s:.0f} % of a core) |",
        f"| kubectl set image + rollout status loop (timed over {loop.sample}, "
        f"extrapolated × {scale:g}) | {loop_wall:.0f} s "
        f"| {1000 * loop.wall_s / loop.sample:.0f} ms "
        f"| {loop.requests / loop.sample:.1f} | {loop.cpu_s * scale:.0f} s (kubectl processes) |",
        "",
        f"fleetdeck is **{loop_wall / ours.wall_s:.1f} ×** faster than the loop. Its wall time: "
        f"cache sync {ours.sync_s:.1f} s, server-side dry run of the whole plan "
        f"{ours.dry_run_s:.1f} s ({ours.dry_run_requests / count:.2f} requests/deployment), "
        f"waves {ours.batch_s:.1f} s ({ours.batch_requests / count:.2f} requests/deployment: "
        f"a read and a patch per rollout; the rollouts are watched through the cache, not "
        f"polled). Batch state: {ours.state}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--waves", default="10%,100%")
    parser.add_argument("--max-parallel", type=int, default=50)
    parser.add_argument("--kubectl-sample", type=int, default=50)
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument("--record", action="store_true", help="write the table to bench/README.md")
    args = parser.parse_args(argv)

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(args.kubeconfig), context="kwok-admin", client_configuration=configuration
    )
    admin = client.ApiClient(configuration)
    namespace = f"bench-rollout-{secrets.token_hex(3)}"
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-rollout-"))
    load = "/".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        names = make_fleet(admin, namespace, args.count)
        print(f"rollout bench: fleetdeck over {args.count}", file=sys.stderr)
        ours = run_fleetdeck(args.kubeconfig, namespace, args.waves, args.max_parallel, folder)
        wait_available(client.AppsV1Api(admin), namespace, args.count, "rolled out")
        sample = names[: args.kubectl_sample]
        print(f"rollout bench: kubectl loop over {len(sample)}", file=sys.stderr)
        loop = run_kubectl(args.kubeconfig, namespace, sample)
    finally:
        cleanup(admin, namespace)
        shutil.rmtree(folder, ignore_errors=True)
    table = report(args.count, args.waves, args.max_parallel, ours, loop, load)
    print(table)
    if args.record:
        from bench.readme import record

        record("fleet-rollout", table, heading="## Fleet rollout in waves (bench/fleet/rollout.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
