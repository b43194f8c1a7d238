"""On call in the deck on the local runtime: a slow rollout named in the banner, undone by a key.

    python -m bench.console.oncall [--runs 3] [--write]

The scene of ``tests/e2e/tui/test_changes_local.py``, timed, with the test's own helpers: a
temporary XDG home, the ``local`` profile on a store whose version 1 is the tiny digits model
and version 2 a much larger one of the same digits (``slow_store``'s recipe), the real agent,
gateway and predictor processes, a MetricsCollector reading the predictors directly (window
3 s, a refresh every 0.5 s), the deck with an SLO of p99 ≤ 12 ms, and one thread of load
(``LoadGenerator``'s thread, in the deck's process as in the test; each request the same two
digits, sent as a V2 ``infer`` request because its answer names the version that served it,
and timestamped here). Each run deploys its own deployment on version 1, lets the collector
measure it, rolls it out to version 2 from the Fleet screen (``u``), then measures

- banner: from the first request answered by version 2 to ``app.breach_text`` becoming
  non-empty, in seconds and in metrics refreshes; also from the refresh whose window p99 first
  crossed the limit (``collector.history``): the issue's goal is the banner within two
  refreshes of the crossing. The first answer over the limit after the rollout is reported too,
  with the version that gave it: on a shared machine version 1's answers also pass 12 ms now
  and then (client side, in a process that also runs the deck), so it is not version 2's first;
- undo: from ``U`` on the rollout's row of the Changes screen (``y`` pressed as soon as the plan
  is shown) to every replica back on version 1 and available; goal under 15 s; and the load
  requests that failed meanwhile (goal 0).

The bad version is slow, not failing: the local runtime's predictors count only 5xx answers as
errors, and version 2 is a real model that takes longer, not a fault switch. Medians and maxima
over ``--runs``. ``--write`` records the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from textual.pilot import Pilot

from bench import readme
from console.backends.local import LocalBackend
from console.metrics import MetricsCollector, direct_source
from console.model import DeploymentState, DeployRequest
from console.profile import Profile, SloSettings
from console.tui.app import DeckApp
from console.tui.screens.changes import ChangesScreen, ConfirmUndo
from console.tui.screens.fleet import FleetScreen
from tests.e2e.tui.test_fleet_local import act
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import (
    local_backend,
    slow_store,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.integration.local.test_local_runtime import LoadGenerator
from tests.support.models import TinyModel

P99_LIMIT_MS = 12.0  # as the test
INTERVAL_S = 0.5
WINDOW_S = 3.0
UNDO_GOAL_S = 15.0
BANNER_GOAL_REFRESHES = 2


class Folders:
    """``mktemp`` as pytest's ``tmp_path_factory`` has it, under one folder of the bench's."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, basename: str, numbered: bool = True) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{basename}-", dir=self.root))
        return path


Answer = tuple[float, float, bool, str]  # answered at (epoch s), latency s, ok, version


class TimedLoad(LoadGenerator):
    """The test's load (its two digits through the gateway, one thread, every failure kept)
    as V2 ``infer`` requests, each answer kept with the time it came back, its latency,
    whether it failed and the model version that answered."""

    def __init__(self, backend: LocalBackend, name: str, images: Any) -> None:
        super().__init__(backend, name, images, threads=1)
        self.answers: list[Answer] = []

    def _run(self) -> None:
        with requests.Session() as session:
            model = f"{self.backend.gateway_url()}/models/{self.name}/v2/models/{self.name}"
            spec = session.get(model, timeout=30).json()["inputs"][0]
            body = {
                "inputs": [
                    {
                        "name": spec["name"],
                        "shape": list(self.images.shape),
                        "datatype": spec["datatype"],
                        "data": self.images.ravel().tolist(),
                    }
                ]
            }
            while not self.stop.is_set():
                started = time.perf_counter()
                version = ""
                try:
                    answer = session.post(f"{model}/infer", json=body, timeout=30)
                    failure = (
                        "" if answer.status_code == 200 else f"{answer.status_code} {answer.text}"
                    )
                    if not failure:
                        version = str(answer.json().get("model_version", ""))
                except requests.RequestException as exc:
                    failure = str(exc)
                latency = time.perf_counter() - started
                with self._lock:
                    self.sent += 1
                    self.answers.append((time.time(), latency, not failure, version))
                    if failure:
                        self.failures.append(failure)


@dataclasses.dataclass
class Run:
    name: str
    rollout_at: float = 0.0  # the dialog's Run clicked (epoch s)
    rollout_done_at: float = 0.0  # the dialog said it finished
    first_v2_at: float = 0.0  # the first answer by version 2
    first_slow_at: float = 0.0  # the first answer after rollout_at slower than the limit
    first_slow_ms: float = 0.0
    first_slow_version: str = ""
    v1_ms: tuple[float, float] = (0.0, 0.0)  # client-side p50, p99 in the 10 s before
    v2_ms: tuple[float, float] = (0.0, 0.0)  # client-side p50, p99 of version 2's answers
    crossing_at: float = 0.0  # the first refresh after rollout_at with window p99 > limit
    crossing_p99_ms: float = 0.0
    banner_at: float = 0.0
    banner: str = ""
    slow_before: int = 0  # answers over the limit in the 10 s before the rollout (version 1)
    answers_before: int = 0
    undo_pressed_at: float = 0.0
    confirmed_at: float = 0.0
    undone_at: float = 0.0
    undo_requests: int = 0
    undo_failures: int = 0
    failures: int = 0
    sent: int = 0
    load: float = 0.0  # the machine's 1-minute load average as the run began
    v2_seen_at: float = 0.0  # the backend first said version 2 (polled every 20 ms)
    answers: list[Answer] = dataclasses.field(default_factory=list, repr=False)
    # The collector's window p99 at each refresh from v2's first answer to the crossing, ms.
    p99_before_crossing: list[float] = dataclasses.field(default_factory=list)

    @property
    def banner_after_v2(self) -> float:
        return self.banner_at - self.first_v2_at

    @property
    def banner_after_crossing(self) -> float:
        return self.banner_at - self.crossing_at

    @property
    def undo_s(self) -> float:
        return self.undone_at - self.undo_pressed_at


async def until(pilot: Pilot[None], what: str, check: Callable[[], object], within: float) -> None:
    """Let the deck run until ``check()`` is truthy, looking every 20 ms."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
        await pilot.pause(0.02)


def serving(backend: LocalBackend, name: str, version: str) -> bool:
    row = backend.deployment("default", name)
    return row is not None and row.state is DeploymentState.AVAILABLE and row.version == version


async def scenario(
    backend: LocalBackend,
    profile: Profile,
    collector: MetricsCollector,
    load: TimedLoad,
    run: Run,
    audit: Path,
) -> None:
    key = ("default", run.name)
    app = DeckApp(backend, profile, user="alice", audit_path=audit, metrics=collector)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            "version 1 measured for a while",
            lambda: len([m for m in collector.history(key) if m.p99_ms]) >= 8,
            60,
        )
        await until(pilot, "no breach before the rollout", lambda: app.breach_text == "", 30)

        async def watch_banner() -> None:
            while not app.breach_text:  # noqa: ASYNC110 (a plain attribute: no event to await)
                await asyncio.sleep(0.01)
            run.banner_at, run.banner = time.time(), app.breach_text

        async def watch_version() -> None:
            while not serving(backend, run.name, "2"):  # noqa: ASYNC110 (a poll, as the deck's)
                await asyncio.sleep(0.02)
            run.v2_seen_at = time.time()

        run.rollout_at = time.time()
        watcher = asyncio.create_task(watch_banner())
        version = asyncio.create_task(watch_version())
        # The on-call engineer's rollout from the Fleet screen (the cursor is on the only row).
        await act(pilot, app, "u", "2")
        run.rollout_done_at = time.time()
        await until(pilot, "version 2 serving", lambda: serving(backend, run.name, "2"), 120)
        await until(pilot, "the banner", lambda: "last change" in app.breach_text, 60)
        await watcher
        await version

        assert isinstance(app.screen, FleetScreen)
        await pilot.press("c")
        screen: object = app.screen  # (typed object: mypy narrows app.screen for good)
        assert isinstance(screen, ChangesScreen)
        await until(
            pilot,
            "the rollout marked as followed by a regression",
            lambda: bool(screen.shown_rows) and screen.shown_rows[0].regressed,
            60,
        )
        run.undo_pressed_at = time.time()
        await pilot.press("U")
        await until(pilot, "the undo's plan", lambda: isinstance(app.screen, ConfirmUndo), 30)
        run.confirmed_at = time.time()
        await pilot.press("y")
        await until(pilot, "version 1 back", lambda: serving(backend, run.name, "1"), 120)
        run.undone_at = time.time()
        await pilot.pause(1.0)


def one_run(
    backend: LocalBackend,
    profile: Profile,
    collector: MetricsCollector,
    store: TinyModel,
    folder: Path,
    number: int,
) -> Run:
    run = Run(f"oncall-{number}", load=os.getloadavg()[0])
    assert backend.deploy(DeployRequest(run.name, "digits", 1, "default", 1)).ok
    poll_until("version 1 serving", lambda: serving(backend, run.name, "1"), 120)
    load = TimedLoad(backend, run.name, store.images)
    try:
        with load:
            asyncio.run(
                scenario(backend, profile, collector, load, run, folder / f"audit-{number}.jsonl")
            )
        history = list(collector.history(("default", run.name)))  # gone with the deployment
    finally:
        backend.delete("default", run.name)
        poll_until("deleted", lambda: backend.deployment("default", run.name) is None, 120)
    limit = P99_LIMIT_MS / 1000
    answers = run.answers = list(load.answers)
    run.sent, run.failures = load.sent, len(load.failures)
    after = [a for a in answers if a[0] > run.rollout_at]
    slow = [a for a in after if a[1] > limit]
    if slow:
        run.first_slow_at, run.first_slow_ms, run.first_slow_version = (
            slow[0][0],
            slow[0][1] * 1000,
            slow[0][3],
        )
    by_v2 = [a for a in after if a[3] == "2" and a[0] < run.undo_pressed_at]
    if by_v2:
        run.first_v2_at = by_v2[0][0]
        run.v2_ms = quantiles([a[1] for a in by_v2])
    before = [a[1] for a in answers if run.rollout_at - 10 <= a[0] < run.rollout_at]
    run.answers_before, run.slow_before = len(before), sum(1 for s in before if s > limit)
    run.v1_ms = quantiles(before)
    for metrics in history:
        p99 = metrics.p99_ms
        if metrics.at > run.rollout_at and p99 is not None and p99 > P99_LIMIT_MS:
            run.crossing_at, run.crossing_p99_ms = metrics.at, p99
            break
        if run.first_v2_at and metrics.at >= run.first_v2_at and p99 is not None:
            run.p99_before_crossing.append(p99)
    during = [ok for at, _, ok, _ in answers if run.undo_pressed_at <= at <= run.undone_at + 1.0]
    run.undo_requests, run.undo_failures = len(during), sum(1 for ok in during if not ok)
    return run


def quantiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in ms."""
    if not seconds:
        return (0.0, 0.0)
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (1000 * ordered[len(ordered) // 2], 1000 * p99)


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f} ({len(values)} refreshes)" if values else "-"


def report(runs: list[Run], setup_s: float, load_at_start: tuple[float, float, float]) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "/".join(f"{v:.2f}" for v in load_at_start)

    def stat(values: list[float], digits: int = 2) -> str:
        return f"{statistics.median(values):.{digits}f} | {max(values):.{digits}f}"

    after_v2 = [r.banner_after_v2 for r in runs]
    after_crossing = [r.banner_after_crossing for r in runs]
    crossing = [r.crossing_at - r.first_v2_at for r in runs]
    undo = [r.undo_s for r in runs]
    to_v1 = [r.undone_at - r.confirmed_at for r in runs]
    failed = [float(r.undo_failures) for r in runs]
    refreshes = [s / INTERVAL_S for s in after_crossing]

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    lines = [
        f"### On call: a slow rollout named and undone (local runtime; {today}, "
        f"{os.cpu_count()} cores, load average at start {load})",
        "",
        f"`python -m bench.console.oncall --runs {len(runs)}`: {len(runs)} runs, each its own "
        f"deployment (1 replica) under one thread of load; SLO p99 ≤ {P99_LIMIT_MS:.0f} ms, "
        f"metrics window {WINDOW_S:.0f} s refreshed every {INTERVAL_S} s. Setup (training both "
        f"versions, the agent) {setup_s:.0f} s.",
        "",
        "| measure | median | max | goal | met (max) |",
        "|---|---|---|---|---|",
        f"| banner after the first answer by version 2, s | {stat(after_v2)} | | |",
        f"| the same in metrics refreshes | {stat([s / INTERVAL_S for s in after_v2], 1)} | | |",
        f"| first answer by version 2 → the refresh whose window p99 is over the limit, s "
        f"| {stat(crossing)} | | |",
        f"| banner after that refresh, s (refreshes) | {stat(after_crossing)} "
        f"| ≤ {BANNER_GOAL_REFRESHES} refreshes ({BANNER_GOAL_REFRESHES * INTERVAL_S:.1f} s) "
        f"| {met(max(refreshes) <= BANNER_GOAL_REFRESHES)} |",
        f"| undo: `U` on the rollout's row → every replica on version 1 and available, s "
        f"| {stat(undo)} | < {UNDO_GOAL_S:.0f} s | {met(max(undo) < UNDO_GOAL_S)} |",
        f"| of which `y` → version 1, s | {stat(to_v1)} | | |",
        f"| load requests failed during the undo | {stat(failed, 0)} | 0 "
        f"| {met(max(failed) == 0)} |",
        "",
        "| run | rollout dialog s | first answer by v2, s after Run | first answer over "
        f"{P99_LIMIT_MS:.0f} ms, s after Run (version) | answers p50 / p99 ms, v1 before · v2 "
        "| v1 answers over the limit, 10 s before | window p99 after v2's first answer, "
        "before the crossing ms | window p99 at the crossing ms "
        "| banner after v2's first / the crossing, s | undo s | requests during the undo "
        "(failed) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(runs, start=1):
        lines.append(
            f"| {number} | {r.rollout_done_at - r.rollout_at:.1f} "
            f"| {r.first_v2_at - r.rollout_at:.2f} "
            f"| {r.first_slow_at - r.rollout_at:.2f} (v{r.first_slow_version}) "
            f"| {r.v1_ms[0]:.1f} / {r.v1_ms[1]:.1f} · {r.v2_ms[0]:.1f} / {r.v2_ms[1]:.1f} "
            f"| {r.slow_before} of {r.answers_before} | {spread(r.p99_before_crossing)} "
            f"| {r.crossing_p99_ms:.1f} "
            f"| {r.banner_after_v2:.2f} / {r.banner_after_crossing:.2f} | {r.undo_s:.2f} "
            f"| {r.undo_requests} ({r.undo_failures}) | {r.load:.2f} |"
        )
    lines += [
        "",
        "Version 2 is slow, not failing: the local runtime's predictors count only 5xx answers "
        "as errors, and version 2 is a real, larger model of the same digits (not a fault "
        "switch), so the breach is on p99 alone. The banner's text in the last run: "
        f"“{runs[-1].banner}”.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    parser.add_argument("--answers", type=Path, help="write every run's answers here (JSON)")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(f"oncall {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)

    load_at_start = os.getloadavg()
    say(f"load average {load_at_start}")
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-oncall-"))
    runs: list[Run] = []
    began = time.perf_counter()
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            use_temporary_xdg(folder / "home", monkeypatch)
            factory = cast(pytest.TempPathFactory, Folders(folder))
            store: TinyModel = slow_store._get_wrapped_function()(factory)
            local = write_local_profile(store.store_root)
            say(f"store trained ({time.perf_counter() - began:.0f} s)")
            try:
                with local_backend(local) as backend:
                    profile = dataclasses.replace(local, slo=SloSettings(p99_ms=P99_LIMIT_MS))
                    collector = MetricsCollector(
                        direct_source(backend), WINDOW_S, interval_s=INTERVAL_S
                    )
                    setup_s = time.perf_counter() - began
                    with collector:
                        for number in range(1, args.runs + 1):
                            run = one_run(backend, profile, collector, store, folder, number)
                            runs.append(run)
                            if args.answers:
                                kept = {**dataclasses.asdict(run), "answers": run.answers}
                                path = args.answers.with_suffix(f".{number}.json")
                                path.write_text(json.dumps(kept))
                            say(
                                f"run {number}: banner {run.banner_after_v2:.2f} s after v2's "
                                f"first answer ({run.banner_after_crossing:.2f} s after the "
                                f"crossing); undo {run.undo_s:.2f} s, "
                                f"{run.undo_failures} of {run.undo_requests} failed"
                            )
            finally:
                stop_every_agent(local)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    say(f"done in {time.perf_counter() - began:.0f} s")
    table = report(runs, setup_s, load_at_start)
    print(table)
    if args.write:
        readme.record("console-oncall", table, "## Console")


if __name__ == "__main__":
    main()
