"""The deck's Fleet screen at 1,000 and 5,000 deployments, against kubectl and Textual's DataTable.

    python -m bench.console.tui_fleet [--counts 1000,5000] [--idle-seconds 20] [--write]

Against the test cluster (``tests/infra/cluster up``), in one run: makes a namespace and fills
it with fleetdeck-labelled Deployments (replicas 0, so KWOK runs no pods), then measures

- time to the full table: a new backend (cache list of every kind) and the deck, headless at
  160×50, until the table holds every row, against ``kubectl get deployments -A -o json`` on the
  same cluster (median of 3 each);
- a filter keystroke to the updated table at the largest count (median and p90 over 30 keys),
  against Textual's DataTable doing the same filter (clear + add the matches) on the same rows;
- CPU of the deck's process while it watches the largest fleet and another process patches 50
  Deployments per second (the deck's share of one core), and its RSS.

Deletes the namespace at the end. ``--write`` records the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from bench import readme
from console.backends.kubernetes.backend import KubernetesBackend, api_client_for
from console.profile import load_profile
from console.tui.app import DeckApp
from console.views.fleet_rows import COLUMNS, build_rows, parse_filter

DEFAULT_KUBECONFIG = Path.home() / ".cache/fleetdeck/run/cluster/kubeconfig"
CONTEXT = "kwok-admin"
FILTER_KEYS = list("m0") + ["backspace"] * 2 + list("m01") + ["backspace"] * 3
PATCHES_PER_SECOND = 50
KUBECTL_GET = ["get", "deployments", "-A", "-o", "json"]


def deployment(name: str) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "fleetdeck",
        "fleetdeck.io/model": "digits",
        "fleetdeck.io/model-version": "1",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "predictor", "image": "predictor:1"}]},
            },
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kubectl_seconds(kubeconfig: str) -> float:
    began = time.perf_counter()
    subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "--context", CONTEXT, *KUBECTL_GET],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclasses.dataclass
class DeckRun:
    full_table_s: float  # in the deck's process, from creating the backend
    full_table_epoch: float = 0.0  # when the table was full (time.time()), for exec → table
    filter_ms: list[float] = dataclasses.field(default_factory=list)
    floor_ms: list[float] = dataclasses.field(default_factory=list)
    direct_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_percent: float | None = None
    rss_mib: float = 0.0
    refreshes: int = 0


def new_backend(namespace: str) -> KubernetesBackend:
    profile = load_profile("kwok")
    assert profile.kubernetes is not None
    settings = dataclasses.replace(profile.kubernetes, namespaces=(namespace,))
    profile = dataclasses.replace(profile, kubernetes=settings)
    return KubernetesBackend(profile, api_client=api_client_for(profile), user="bench")


async def deck_run(namespace: str, count: int, *, interact: bool, idle_seconds: float) -> DeckRun:
    began = time.perf_counter()
    backend = new_backend(namespace)
    backend.start(timeout=120)
    app = DeckApp(backend, backend.profile, context=CONTEXT, user="bench")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await full_table(pilot, app, count)
            result = DeckRun(time.perf_counter() - began, time.time())
            result.rss_mib = rss_mib()
            if not interact:
                return result
            await pilot.press("slash")
            result.floor_ms = await keys_ms(pilot, ["f12"] * 20)
            result.filter_ms = await keys_ms(pilot, FILTER_KEYS * 3)
            # The same work called directly: filter + sort + drawing every visible line.
            text = ""
            for key in FILTER_KEYS * 3:
                text = text[:-1] if key == "backspace" else text + key
                started = time.perf_counter()
                app.fleet.set_filter(text)
                for y in range(app.fleet.table.size.height):
                    app.fleet.table.render_line(y)
                result.direct_ms.append((time.perf_counter() - started) * 1000)
                await pilot.pause()
            await pilot.press("escape")
            await pilot.pause(1.0)
            patcher = start_patcher(namespace, count, idle_seconds + 3)
            await watch_while_patched(pilot, app, result, [patcher], idle_seconds)
            return result
    finally:
        backend.close()


async def full_table(pilot: Pilot[None], app: DeckApp, rows: int) -> None:
    """Until the Fleet table holds ``rows`` rows and the first frame with them is drawn."""
    while len(app.fleet.table.view) < rows:
        await pilot.pause(0.01)
    await pilot.pause()


async def keys_ms(pilot: Pilot[None], keys: list[str]) -> list[float]:
    """Each key's round trip through the pilot to the next frame, in ms. A key nothing is
    bound to (f12) measures the pilot's own round trip: the floor subtracted from the rest."""
    times = []
    for key in keys:
        started = time.perf_counter()
        await pilot.press(key)
        await pilot.pause()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def watch_while_patched(
    pilot: Pilot[None],
    app: DeckApp,
    result: DeckRun,
    patchers: list[subprocess.Popen[bytes]],
    idle_seconds: float,
) -> None:
    """The deck's CPU (its share of one core) and refreshes while ``patchers`` change the
    fleet, then its RSS; waits for the patchers to end."""
    try:
        await pilot.pause(2.0)  # the patches are flowing
        loads = app.fleet.loads
        cpu = time.process_time()
        wall = time.perf_counter()
        await pilot.pause(idle_seconds)
        result.cpu_percent = 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)
        result.refreshes = app.fleet.loads - loads
    finally:
        for patcher in patchers:
            patcher.wait()
    result.rss_mib = max(result.rss_mib, rss_mib())


def start_patcher(
    namespace: str,
    count: int,
    seconds: float,
    *,
    kubeconfig: str | None = None,
    per_second: int = PATCHES_PER_SECOND,
) -> subprocess.Popen[bytes]:
    """Another process changing the fleet, so its CPU is not counted as the deck's."""
    command = [sys.executable, "-m", "bench.console.tui_fleet", "--patch", namespace]
    command += ["--count", str(count), "--seconds", str(seconds), "--rate", str(per_second)]
    env = {**os.environ, "KUBECONFIG": kubeconfig} if kubeconfig else None
    return subprocess.Popen(command, env=env)


def deck_in_a_process(
    namespace: str, count: int, *, interact: bool, idle_seconds: float
) -> tuple[DeckRun, float]:
    """One deck run in a fresh interpreter (clean memory and CPU accounting); also returns the
    wall time from exec to the full table, interpreter start and imports included, as
    kubectl's time includes its own start."""
    command = [sys.executable, "-m", "bench.console.tui_fleet", "--deck", namespace]
    command += ["--count", str(count), "--seconds", str(idle_seconds)]
    command += ["--interact"] if interact else []
    started = time.time()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    run = DeckRun(**json.loads(out.strip().splitlines()[-1]))
    return run, run.full_table_epoch - started


def datatable_filter_ms(count: int) -> tuple[float, list[float]]:
    """Textual's DataTable with the same rows: load time, then the same filter as clear+add."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from console.views.fleet_rows import visible_rows

    fixed = [d for d in _synthetic(count)]
    rows = build_rows(fixed)

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    async def scenario() -> tuple[float, list[float]]:
        app = Plain()
        async with app.run_test(size=(160, 50)) as pilot:
            table: DataTable[str] = app.query_one(DataTable)
            table.add_columns(*(c.title for c in COLUMNS))
            started = time.perf_counter()
            table.add_rows([r.cells for r in rows])
            await pilot.pause()
            load = time.perf_counter() - started
            text = ""
            times = []
            for key in FILTER_KEYS:
                text = text[:-1] if key == "backspace" else text + key
                started = time.perf_counter()
                table.clear()
                table.add_rows([r.cells for r in visible_rows(rows, parse_filter(text), _order())])
                await pilot.pause()
                times.append((time.perf_counter() - started) * 1000)
            return load, times

    return asyncio.run(scenario())


def _order() -> Any:
    from console.views.fleet_rows import SortOrder

    return SortOrder()


def _synthetic(count: int) -> list[Any]:
    from console.model import DeploymentState, ModelDeployment

    return [
        ModelDeployment(
            f"m{i:05}",
            "bench",
            "digits",
            "1",
            0,
            0,
            0,
            0,
            DeploymentState.AVAILABLE,
            "",
            1,
            datetime.now(UTC),
        )
        for i in range(count)
    ]


def patch_loop(
    namespace: str, count: int, seconds: float, per_second: int = PATCHES_PER_SECOND
) -> None:
    """Patch ``per_second`` Deployments a second (an annotation), round robin."""
    from kubernetes import client, config

    api: Any = client.AppsV1Api(
        config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG)), context=CONTEXT
        )
    )
    pool = ThreadPoolExecutor(8)
    deadline = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        names = [f"m{(tick * per_second + i) % count:05}" for i in range(per_second)]
        body = {"metadata": {"annotations": {"bench/tick": str(tick)}}}
        patch = partial(api.patch_namespaced_deployment, namespace=namespace, body=body)
        list(pool.map(patch, names))
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def fill(apps: Any, namespace: str, start: int, stop: int) -> None:
    list(
        ThreadPoolExecutor(16).map(
            lambda i: apps.create_namespaced_deployment(namespace, deployment(f"m{i:05}")),
            range(start, stop),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--counts", default="1000,5000")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    parser.add_argument("--patch", metavar="NAMESPACE", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=PATCHES_PER_SECOND, help=argparse.SUPPRESS)
    parser.add_argument("--deck", metavar="NAMESPACE", help=argparse.SUPPRESS)
    parser.add_argument("--interact", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kubeconfig = os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG))
    os.environ["KUBECONFIG"] = kubeconfig
    if args.patch:
        patch_loop(args.patch, args.count, args.seconds, args.rate)
        return
    if args.deck:
        import kubernetes.client  # noqa: F401 (imported before the clock starts: "after imports")

        run = asyncio.run(
            deck_run(args.deck, args.count, interact=args.interact, idle_seconds=args.seconds)
        )
        print(json.dumps(dataclasses.asdict(run)))
        return

    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig, context=CONTEXT)  # type: ignore[no-untyped-call]
    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    counts = sorted(int(c) for c in args.counts.split(","))
    namespace = f"bench-tui-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    lines = []
    try:
        made = 0
        runs_kubectl: dict[int, float] = {}
        runs: dict[int, tuple[DeckRun, float, float]] = {}
        for count in counts:
            fill(apps, namespace, made, count)
            made = count
            time.sleep(2.0)  # let the controllers make the ReplicaSets
            kubectl = statistics.median(kubectl_seconds(kubeconfig) for _ in range(3))
            tries = [
                deck_in_a_process(namespace, count, interact=False, idle_seconds=0)
                for _ in range(3)
            ]
            in_process = statistics.median(t.full_table_s for t, _ in tries)
            from_exec = statistics.median(e for _, e in tries)
            runs[count] = (tries[-1][0], in_process, from_exec)
            runs_kubectl[count] = kubectl
            print(
                f"{count}: deck {in_process:.2f}s in process, {from_exec:.2f}s from exec; "
                f"kubectl {kubectl:.2f}s",
                flush=True,
            )
        top = counts[-1]
        deck, _ = deck_in_a_process(namespace, top, interact=True, idle_seconds=args.idle_seconds)
        dt_load, dt_filter = datatable_filter_ms(top)
        today = datetime.now(UTC).date().isoformat()
        lines.append(
            f"### Deck, Fleet screen ({today}, {os.cpu_count()} cores; headless 160×50, "
            "replicas-0 Deployments in one namespace)"
        )
        lines.append("")
        lines.append("| measure | deck | baseline | ratio | target | met |")
        lines.append("|---|---|---|---|---|---|")
        for count in counts:
            _, in_process, from_exec = runs[count]
            kubectl = runs_kubectl[count]
            ratio = from_exec / kubectl
            target = "≤ 1.5 × kubectl" if count == top else ""
            met = ("yes" if ratio <= 1.5 else "no") if count == top else ""
            lines.append(
                f"| {count:,} deployments: exec → full table, s (median of 3; after imports "
                f"{in_process:.2f}) | {from_exec:.2f} | kubectl get -A -o json {kubectl:.2f} "
                f"| {ratio:.2f} | {target} | {met} |"
            )
        floor = statistics.median(deck.floor_ms)
        median_ms = statistics.median(deck.filter_ms) - floor
        p90_ms = percentile(deck.filter_ms, 0.9) - floor
        direct = statistics.median(deck.direct_ms)
        dt_median = statistics.median(dt_filter)
        lines.append(
            f"| filter keystroke → updated table at {top:,}, ms median (p90); pilot round trip "
            f"minus its {floor:.0f} ms floor | {median_ms:.1f} ({p90_ms:.1f}) "
            f"| DataTable clear+add {dt_median:.0f} ({percentile(dt_filter, 0.9):.0f}) "
            f"| {median_ms / dt_median:.3f} | < 50 | {'yes' if median_ms < 50 else 'no'} |"
        )
        lines.append(
            f"| the same filter called directly (filter, sort, draw visible lines), ms median "
            f"(p90) | {direct:.1f} ({percentile(deck.direct_ms, 0.9):.1f}) | | | < 50 "
            f"| {'yes' if direct < 50 else 'no'} |"
        )
        lines.append(f"| DataTable: add {top:,} rows and render, s | | {dt_load:.2f} | | | |")
        cpu = deck.cpu_percent or 0.0
        lines.append(
            f"| CPU watching {top:,} with {PATCHES_PER_SECOND} changes/s, % of one core "
            f"({deck.refreshes} refreshes in {args.idle_seconds:.0f} s) | {cpu:.1f} | | | < 10 "
            f"| {'yes' if cpu < 10 else 'no'} |"
        )
        lines.append(
            f"| RSS at {top:,} (backend cache + deck), MB | {deck.rss_mib:.0f} | | | < 300 "
            f"| {'yes' if deck.rss_mib < 300 else 'no'} |"
        )
        report = "\n".join(lines)
        print(report)
        if args.write:
            readme.record("console-tui", report, "## Console")
    finally:
        core.delete_namespace(namespace)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(peak RSS of the whole bench process {peak:.0f} MB)")


if __name__ == "__main__":
    main()
