"""The deck over two clusters as one Fleet table, against kubectl on both.

    python -m bench.console.tui_clusters [--count 2500] [--idle-seconds 20] [--write]

Against the two test clusters (``tests/infra/cluster up``, and cluster ``b`` whose kubeconfig
is ``$FLEETDECK_KUBECONFIG_B``), in one run: makes a namespace of the same name in each and
fills it with ``--count`` fleetdeck-labelled Deployments (replicas 0, so KWOK runs no pods),
writes a temporary profile naming both clusters, then measures

- exec → full table: a fresh interpreter opens both clusters (``open_sessions``, as the deck
  does) and runs the deck headless at 160×50 until the table holds every row of both, against
  two ``kubectl get deployments -A -o json`` run in parallel, one per cluster (median of 3);
- a filter keystroke to the updated table over both clusters' rows (median and p90 over 30
  keys, minus the pilot's own round trip), and ``cluster=b`` typed as a filter;
- CPU of the deck's process while another process patches 25 Deployments per second in each
  cluster (the deck's share of one core), and its RSS.

Deletes the namespaces at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import readme
from bench.console.tui_fleet import (
    FILTER_KEYS,
    DeckRun,
    fill,
    full_table,
    keys_ms,
    percentile,
    rss_mib,
    start_patcher,
    watch_while_patched,
)
from bench.fleet.clusters import (
    Cluster,
    add_kubeconfig_flags,
    admin_client,
    wait_gone,
    write_profile,
)

PATCHES_PER_SECOND = 25  # in each cluster
KUBECTL_GET = ["get", "deployments", "-A", "-o", "json"]
CLUSTER_FILTER = list("cluster=b")


def kubectl_both_seconds(clusters: list[Cluster]) -> float:
    """Two ``kubectl get deployments -A -o json`` in parallel, one per cluster: until both end."""
    began = time.perf_counter()
    running = [
        subprocess.Popen(
            ["kubectl", "--kubeconfig", str(c.kubeconfig), "--context", "kwok-admin", *KUBECTL_GET],
            stdout=subprocess.DEVNULL,
        )
        for c in clusters
    ]
    for process in running:
        if process.wait() != 0:
            raise RuntimeError(f"kubectl exited {process.returncode}")
    return time.perf_counter() - began


@dataclasses.dataclass
class ClustersRun(DeckRun):
    cluster_filter_ms: list[float] = dataclasses.field(default_factory=list)
    cluster_filter_rows: int = 0


async def deck_run(
    total: int, *, interact: bool, idle_seconds: float, patch: list[tuple[str, str]], count: int
) -> ClustersRun:
    """In the deck's own process: open every cluster of the profile and show them."""
    from console.core.clusters import open_sessions
    from console.core.session import SessionRequest
    from console.profile import load_profile
    from console.tui.app import DeckApp
    from console.tui.launch import cluster_decks

    began = time.perf_counter()
    fleet = open_sessions(load_profile("fleet"), SessionRequest())
    clusters = cluster_decks(fleet, lambda profile, backend: None)
    home = clusters.home
    app = DeckApp(home.backend, home.profile, clusters=clusters, user="bench")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await full_table(pilot, app, total)
            result = ClustersRun(time.perf_counter() - began, time.time())
            result.rss_mib = rss_mib()
            if not interact:
                return result
            await pilot.press("slash")
            result.floor_ms = await keys_ms(pilot, ["f12"] * 20)
            result.filter_ms = await keys_ms(pilot, FILTER_KEYS * 3)
            await pilot.press(*["backspace"] * 5)
            result.cluster_filter_ms = await keys_ms(pilot, CLUSTER_FILTER)
            result.cluster_filter_rows = len(app.fleet.table.view)
            await pilot.press("escape")
            await pilot.pause(1.0)
            patchers = [
                start_patcher(
                    namespace,
                    count,
                    idle_seconds + 3,
                    kubeconfig=kubeconfig,
                    per_second=PATCHES_PER_SECOND,
                )
                for kubeconfig, namespace in patch
            ]
            await watch_while_patched(pilot, app, result, patchers, idle_seconds)
            return result
    finally:
        fleet.close()


def deck_in_a_process(
    env: dict[str, str], clusters: list[Cluster], count: int, *, interact: bool, idle: float
) -> tuple[ClustersRun, float]:
    """One deck run in a fresh interpreter; also the wall time from exec to the full table."""
    command = [sys.executable, "-m", "bench.console.tui_clusters", "--deck"]
    command += ["--count", str(count), "--idle-seconds", str(idle)]
    command += ["--interact"] if interact else []
    for c in clusters:
        command += ["--patch", f"{c.kubeconfig}={c.namespace}"]
    started = time.time()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    run = ClustersRun(**json.loads(out.strip().splitlines()[-1]))
    return run, run.full_table_epoch - started


def report(
    clusters: list[Cluster],
    count: int,
    kubectl: float,
    tries: list[tuple[ClustersRun, float]],
    deck: ClustersRun,
    idle: float,
) -> str:
    total = count * len(clusters)
    from_exec = statistics.median(e for _, e in tries)
    in_process = statistics.median(t.full_table_s for t, _ in tries)
    floor = statistics.median(deck.floor_ms)
    median_ms = statistics.median(deck.filter_ms) - floor
    p90_ms = percentile(deck.filter_ms, 0.9) - floor
    by_cluster = statistics.median(deck.cluster_filter_ms) - floor
    cpu = deck.cpu_percent or 0.0
    ratio = from_exec / kubectl
    today = datetime.now(UTC).date().isoformat()
    lines = [
        f"### Deck over two clusters ({today}, {os.cpu_count()} cores; headless 160×50, "
        f"{count:,} replicas-0 Deployments in each of {', '.join(c.name for c in clusters)})",
        "",
        "| measure | deck | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| {total:,} deployments: exec → full table, s (median of 3; after imports "
        f"{in_process:.2f}) | {from_exec:.2f} | two kubectl get -A -o json in parallel "
        f"{kubectl:.2f} | {ratio:.2f} | ≤ 1.5 × | {'yes' if ratio <= 1.5 else 'no'} |",
        f"| filter keystroke → updated table at {total:,}, ms median (p90); pilot round trip "
        f"minus its {floor:.0f} ms floor | {median_ms:.1f} ({p90_ms:.1f}) | | | < 50 "
        f"| {'yes' if median_ms < 50 else 'no'} |",
        f"| typing cluster=b ({deck.cluster_filter_rows:,} rows left), ms median per key "
        f"| {by_cluster:.1f} | | | < 50 | {'yes' if by_cluster < 50 else 'no'} |",
        f"| CPU watching {total:,} with {PATCHES_PER_SECOND} changes/s in each cluster, % of "
        f"one core ({deck.refreshes} refreshes in {idle:.0f} s) | {cpu:.1f} | | | < 10 "
        f"| {'yes' if cpu < 10 else 'no'} |",
        f"| RSS at {total:,} (both caches + deck), MB | {deck.rss_mib:.0f} | | | < 400 "
        f"| {'yes' if deck.rss_mib < 400 else 'no'} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2500, help="deployments per cluster")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    add_kubeconfig_flags(parser)
    parser.add_argument("--deck", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--interact", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--patch", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.deck:
        import kubernetes.client  # noqa: F401 (imported before the clock starts: "after imports")

        patch = [(kubeconfig, ns) for kubeconfig, ns in (p.split("=", 1) for p in args.patch)]
        run = asyncio.run(
            deck_run(
                args.count * len(patch),
                interact=args.interact,
                idle_seconds=args.idle_seconds,
                patch=patch,
                count=args.count,
            )
        )
        print(json.dumps(dataclasses.asdict(run)))
        return

    from kubernetes import client

    namespace = f"bench-tui-clusters-{secrets.token_hex(3)}"
    clusters = [
        Cluster("a", args.kubeconfig, namespace),
        Cluster("b", args.kubeconfig_b, namespace),
    ]
    admins: dict[str, Any] = {c.name: admin_client(c.kubeconfig) for c in clusters}
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-tui-clusters-"))
    try:
        for c in clusters:
            core: Any = client.CoreV1Api(admins[c.name])
            core.create_namespace({"metadata": {"name": namespace}})
        with ThreadPoolExecutor(len(clusters)) as pool:
            list(
                pool.map(
                    lambda c: fill(client.AppsV1Api(admins[c.name]), namespace, 0, args.count),
                    clusters,
                )
            )
        time.sleep(2.0)  # let the controllers make the ReplicaSets
        env = write_profile(folder, clusters)
        kubectl_both_seconds(clusters)  # warm-up
        kubectl = statistics.median(kubectl_both_seconds(clusters) for _ in range(3))
        tries = [
            deck_in_a_process(env, clusters, args.count, interact=False, idle=0) for _ in range(3)
        ]
        print(
            f"deck {statistics.median(e for _, e in tries):.2f}s from exec; "
            f"two kubectl {kubectl:.2f}s",
            flush=True,
        )
        deck, _ = deck_in_a_process(
            env, clusters, args.count, interact=True, idle=args.idle_seconds
        )
    finally:
        for c in clusters:
            try:
                client.CoreV1Api(admins[c.name]).delete_namespace(namespace)
            except Exception as exc:  # clean up the other cluster anyway
                print(f"clean-up in {c.name}: {exc!r}", file=sys.stderr)
        try:
            wait_gone(admins, namespace)
        except Exception as exc:  # the deletions were asked for: report, do not hide the run
            print(f"waiting for the namespaces to go: {exc!r}", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
    table = report(clusters, args.count, kubectl, tries, deck, args.idle_seconds)
    print(table)
    if args.write:
        readme.record("console-tui-clusters", table, "## Console")


if __name__ == "__main__":
    main()
