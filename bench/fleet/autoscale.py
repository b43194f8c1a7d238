"""Autoscaling on the local runtime: from a step in load to the new replicas ready, next to what
the HPA algorithm predicts for the same numbers.

    python -m bench.fleet.autoscale [--steps 15,30] [--target 5] [--max 6] [--write]
    python -m bench.fleet.autoscale --backend kwok [...]   (the test cluster: autoscale_cluster)

A temporary XDG home, the ``local`` profile on the tests' digits store (trained here through
the real training code), the real agent, gateway and predictor processes, the agent's default
evaluation every 15 s (the HPA's sync period). For each step ``L`` (req/s) a deployment of its
own starts at 1 replica with ``fleetdeck autoscale --min 1 --max MAX --rps-per-pod TARGET`` and
takes a light load (half the target) for 20 s; then the load steps to ``L`` req/s, sent open
loop (at fixed times, whatever the answers do: a client fleet does not slow down because the
service is busy), through the gateway. Measured from the step:

- the first scaling decision (its time as the agent recorded it), and the reason it gave;
- every replica the decisions asked for ready (the deployment's ready count at the desired
  count), polled every 0.1 s;
- the replicas reached, against the HPA algorithm's count for the same numbers
  (``console.autoscaling``: ``ceil(1 × L / TARGET)``, then its default scale-up limit: the
  larger of +100 % and +4 pods per 15 s, then ``--max``), and the decisions it took;
- requests that failed (goal 0) and the load's p99.

The HPA's own timing for the same step: it decides at its next sync (every 15 s) once the rate
it reads (here the agent's count over the last period) shows the step, so a decision lands 0-30 s
after a step; the new replicas are then as fast as the runtime starts and readies them.
``--write`` records the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from bench import readme
from console.autoscaling import SCALE_UP, SYNC_SECONDS, desired_replicas
from console.backends.local import LocalBackend
from console.model import AutoscaleRequest
from tests.integration.local.fixtures import (
    DigitsStore,
    digits_store,
    local_backend,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.support.gateway_load import deploy_available, predict

WARM_SECONDS = 20.0
SETTLE_SECONDS = 75.0  # after the step: long enough for two more evaluations past the first
SCALE_DOWN_WINDOW = 30


class Folders:
    """``mktemp`` as pytest's ``tmp_path_factory`` has it, under one folder of the bench's."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, basename: str, numbered: bool = True) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{basename}-", dir=self.root))


class OpenLoop:
    """Predictions at ``rate`` req/s from a few threads, each request at its scheduled time
    (late ones sent at once, never skipped); every answer's latency and failure kept."""

    def __init__(self, backend: LocalBackend, name: str, images: Any, threads: int = 6) -> None:
        self.backend, self.name, self.images = backend, name, images[:2]
        self.rate = 0.0
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = time.monotonic()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> OpenLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.rate = rate
            self._next = time.monotonic()

    def _slot(self) -> float | None:
        with self._lock:
            if self.rate <= 0:
                return None
            at = self._next
            self._next += 1.0 / self.rate
            return at

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                at = self._slot()
                if at is None:
                    self._stop.wait(0.05)
                    continue
                wait = at - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                started = time.perf_counter()
                try:
                    answer = predict(self.backend, self.name, self.images, session)
                    failure = "" if answer.status_code == 200 else f"{answer.status_code}"
                except requests.RequestException as exc:
                    failure = type(exc).__name__
                with self._lock:
                    self.sent += 1
                    self.latencies.append(time.perf_counter() - started)
                    if failure:
                        self.failures.append(failure)


def hpa_replicas(load: float, target: float, most: int) -> list[int]:
    """The replicas an HPA takes from 1 for ``load`` req/s in all: each sync's count, with its
    default scale-up limit, until it stops moving."""
    steps: list[int] = []
    current = 1
    while True:
        wanted = min(most, desired_replicas(current, load / current, target))
        limit = max(
            current + p.value if p.kind == "Pods" else math.ceil(current * (1 + p.value / 100))
            for p in SCALE_UP.policies
        )
        following = min(wanted, limit)
        if following <= current:
            return steps
        steps.append(following)
        current = following


@dataclass
class Step:
    load: float
    predicted: list[int]
    first_decision_s: float | None = None
    first_reason: str = ""
    ready_s: float | None = None  # every replica the first decision asked for ready
    final_ready_s: float | None = None  # the last count reached ready
    reached: int = 1
    decisions: list[str] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    p99_ms: float = 0.0


def ready_count(backend: LocalBackend, name: str) -> tuple[int, int]:
    row = backend.deployment("default", name)
    return (row.desired, row.ready) if row is not None else (0, 0)


def one_step(
    backend: LocalBackend, store: DigitsStore, load: float, target: float, most: int
) -> Step:
    name = f"scale-{int(load)}"
    deploy_available(backend, name)
    request = AutoscaleRequest(
        name, 1, most, rps_per_pod=target, scale_down_seconds=SCALE_DOWN_WINDOW
    )
    made = backend.autoscale("default", request)
    assert made.ok, made.message
    step = Step(load, hpa_replicas(load, target, most))
    with OpenLoop(backend, name, store.images) as traffic:
        traffic.set_rate(target / 2)
        time.sleep(WARM_SECONDS)
        known = {(d.at, d.to_replicas) for d in backend.autoscaler("default", name).decisions}  # type: ignore[union-attr]
        stepped_at = time.time()
        traffic.set_rate(load)
        sent_before, failed_before = traffic.sent, len(traffic.failures)
        latencies_from = len(traffic.latencies)
        last_reached = 1
        while time.time() - stepped_at < SETTLE_SECONDS:
            info = backend.autoscaler("default", name)
            assert info is not None
            new = [d for d in reversed(info.decisions) if (d.at, d.to_replicas) not in known]
            if new and step.first_decision_s is None:
                step.first_decision_s = new[0].at - stepped_at
                step.first_reason = new[0].reason
            step.decisions = [f"{d.from_replicas}→{d.to_replicas}" for d in new]
            desired, ready = ready_count(backend, name)
            if new and ready >= new[0].to_replicas and step.ready_s is None:
                step.ready_s = time.time() - stepped_at
            if new and desired == ready and ready > last_reached:
                last_reached = ready
                step.final_ready_s = time.time() - stepped_at
            time.sleep(0.1)
        step.reached = last_reached
        step.sent = traffic.sent - sent_before
        step.failed = len(traffic.failures) - failed_before
        latencies = sorted(traffic.latencies[latencies_from:])
        if latencies:
            step.p99_ms = 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    assert backend.delete("default", name).ok
    return step


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(steps: list[Step], target: float, most: int, setup_s: float, load_avg: str) -> str:
    today = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"### Autoscaling, local runtime ({today}, {os.cpu_count()} cores, load average at "
        f"start {load_avg})",
        "",
        f"`python -m bench.fleet.autoscale --steps {','.join(f'{s.load:g}' for s in steps)} "
        f"--target {target:g} --max {most}`: each step on a deployment of its own at 1 replica, "
        f"autoscaled 1..{most} at {target:g} req/s per pod (the agent's default evaluation every "
        f"{SYNC_SECONDS:.0f} s), {WARM_SECONDS:.0f} s at {target / 2:g} req/s, then the step, "
        f"open loop through the gateway; watched {SETTLE_SECONDS:.0f} s. Setup (the store "
        f"trained, the agent) {setup_s:.0f} s.",
        "",
        "| step req/s | HPA algorithm: replicas (per sync) | reached | decisions | step → first "
        "decision, s | → its replicas ready, s | → the last count ready, s | requests (failed) "
        "| load p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        predicted = " → ".join(["1", *map(str, s.predicted)])
        lines.append(
            f"| {s.load:g} | {predicted} | {s.reached} | {', '.join(s.decisions) or '-'} "
            f"| {seconds(s.first_decision_s)} | {seconds(s.ready_s)} "
            f"| {seconds(s.final_ready_s)} | {s.sent} ({s.failed}) | {s.p99_ms:.0f} |"
        )
    decided = [s.first_decision_s for s in steps if s.first_decision_s is not None]
    if decided:
        lines += [
            "",
            f"The HPA algorithm decides at its next sync once the rate it reads shows the step: "
            f"0–{2 * SYNC_SECONDS:.0f} s after it here; the first decisions came "
            f"{min(decided):.1f}–{max(decided):.1f} s after the steps (median "
            f"{statistics.median(decided):.1f}). First reason given: “{steps[0].first_reason}”.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default="15,30", help="req/s after each step")
    parser.add_argument("--target", type=float, default=5.0, help="req/s per pod")
    parser.add_argument("--max", type=int, default=6, help="the autoscaler's --max")
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    parser.add_argument(
        "--backend",
        choices=("local", "kwok"),
        default="local",
        help="the local runtime, or the test cluster (KEDA, Prometheus, the HPA controller)",
    )
    parser.add_argument(
        "--rate-window", default="30s", help="kwok: the KEDA trigger's rate() range"
    )
    parser.add_argument(
        "--polling", type=int, default=5, help="kwok: the ScaledObject's pollingInterval, s"
    )
    args = parser.parse_args()
    if args.backend == "kwok":
        from bench.fleet import autoscale_cluster

        autoscale_cluster.main(args)
        return
    loads = [float(part) for part in args.steps.split(",")]

    def say(message: str) -> None:
        print(f"autoscale {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)

    load_avg = "/".join(f"{v:.2f}" for v in os.getloadavg())
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-autoscale-"))
    began = time.perf_counter()
    steps: list[Step] = []
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            use_temporary_xdg(folder / "home", monkeypatch)
            factory = cast(pytest.TempPathFactory, Folders(folder))
            store: DigitsStore = digits_store._get_wrapped_function()(factory)
            profile = write_local_profile(store.root)
            try:
                with local_backend(profile) as backend:
                    setup_s = time.perf_counter() - began
                    say(f"set up in {setup_s:.0f} s")
                    for load in loads:
                        step = one_step(backend, store, load, args.target, args.max)
                        say(
                            f"step {load:g} req/s: decision {seconds(step.first_decision_s)} s, "
                            f"ready {seconds(step.ready_s)} s, reached {step.reached} "
                            f"(HPA {step.predicted}), {step.failed} of {step.sent} failed"
                        )
                        steps.append(step)
            finally:
                stop_every_agent(profile)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    table = report(steps, args.target, args.max, setup_s, load_avg)
    print(table)
    if args.write:
        readme.record("fleet-autoscale", table, "## Fleet")


if __name__ == "__main__":
    main()
