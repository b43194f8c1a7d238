"""The Logs screen ingesting 20,000 lines per second, against Textual's own Log widget.

    python -m bench.console.log_ingest [--rate 20000] [--seconds 30] [--rounds 2] [--write]

Each contender runs in its own process (so each RSS is its own), headless at 160×50, for the
same time, fed by the same source: a producer thread writing ``rate`` lines per second into a
bounded queue that the screen's reader drains (what the Kubernetes backend's pod readers do; a
reader that falls behind holds the producer back, so the lines actually produced are reported
too). Meanwhile a "user" thread presses a key every 100 ms; the app timestamps when the key's
action runs, giving key-press → handled latency percentiles.

- ``logs-screen``: ``LogsScreen`` (ring of 50,000 lines, hand-over drained every 50 ms).
- ``textual-log``: ``textual.widgets.Log(max_lines=50_000)`` fed by a thread worker with
  ``call_from_thread(log.write_lines, batch)`` per 1,000 lines (the documented way).

The contenders alternate for ``--rounds`` rounds (A B A B) so a busy neighbour hurts both alike;
every run is a row. ``--write`` records the table in bench/README.md (Console section).
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Log

from bench import readme
from console.backends.base import LogRequest
from console.tui.screens.logs import LogsScreen

CONTENDERS = ("logs-screen", "textual-log")
KEY_INTERVAL = 0.1
CAPACITY = 50_000
BASELINE_BATCH = 1_000


class RateSource:
    """A pod writing ``rate`` lines per second, read through a bounded queue."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate, self.seconds = rate, seconds
        self.produced = 0
        self.lines: queue.Queue[str | None] = queue.Queue(maxsize=10_000)

    def _produce(self, stop: threading.Event) -> None:
        began = time.perf_counter()
        tick = 0.005
        while not stop.is_set():
            elapsed = time.perf_counter() - began
            if elapsed >= self.seconds:
                break
            due = int(elapsed * self.rate) - self.produced
            for _ in range(due):
                n = self.produced
                line = (
                    f"2026-11-26T12:00:{n % 60:02d}.{n % 1000:03d}Z INFO predict "
                    f"model=digits version=3 request={n} batch={n % 64} latency_ms={n % 97}"
                )
                while not stop.is_set():
                    try:
                        self.lines.put(line, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                self.produced += 1
            time.sleep(tick)
        self.lines.put(None)

    def logs(self, request: LogRequest) -> Iterator[str]:
        stop = request.stop or threading.Event()
        threading.Thread(target=self._produce, args=(stop,), daemon=True).start()
        while True:
            line = self.lines.get()
            if line is None:
                return
            yield line


class BenchApp(App[None]):
    """Hosts one contender; f12 is the user's key, its action records the latency."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("f12", "ping", "ping", priority=True)]

    def __init__(self, contender: str, source: RateSource) -> None:
        super().__init__()
        self.contender, self.source = contender, source
        self.sent: deque[float] = deque()
        self.latencies: list[float] = []
        self.shown = 0

    def compose(self) -> ComposeResult:
        if self.contender == "textual-log":
            yield Log(max_lines=CAPACITY, id="baseline")

    def on_mount(self) -> None:
        if self.contender == "logs-screen":
            request = LogRequest(["bench-pod"], "bench")
            self.push_screen(LogsScreen(self.source, request, "bench", capacity=CAPACITY))
        else:
            self._feed_baseline()

    @work(thread=True)
    def _feed_baseline(self) -> None:
        log = self.query_one(Log)
        batch: list[str] = []
        for line in self.source.logs(LogRequest(["bench-pod"], "bench")):
            batch.append(line)
            if len(batch) >= BASELINE_BATCH:
                self.call_from_thread(log.write_lines, batch)
                self.shown += len(batch)
                batch = []
        if batch:
            self.call_from_thread(log.write_lines, batch)
            self.shown += len(batch)

    def action_ping(self) -> None:
        if self.sent:
            self.latencies.append(time.perf_counter() - self.sent.popleft())

    def press_from_thread(self) -> None:
        self.sent.append(time.perf_counter())
        self.post_message(events.Key("f12", None))  # thread-safe, like a terminal's input


def run_one(contender: str, rate: int, seconds: float) -> dict[str, Any]:
    import asyncio

    source = RateSource(rate, seconds)
    app = BenchApp(contender, source)

    async def scenario() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            stop = threading.Event()

            def user() -> None:
                while not stop.wait(KEY_INTERVAL):
                    app.press_from_thread()

            presser = threading.Thread(target=user, daemon=True)
            began = time.perf_counter()
            presser.start()
            await asyncio.sleep(seconds)
            stop.set()
            presser.join()
            await pilot.pause(0.5)  # the last presses land
            app.shown = app.shown or _screen_total(app)
            app.elapsed = time.perf_counter() - began  # type: ignore[attr-defined]

    asyncio.run(scenario())
    latencies_ms = sorted(x * 1000 for x in app.latencies)
    return {
        "contender": contender,
        "rate": rate,
        "seconds": seconds,
        "produced": source.produced,
        "shown": app.shown,
        "presses": len(latencies_ms) + len(app.sent),
        "answered": len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p90_ms": percentile(latencies_ms, 0.90),
        "p99_ms": percentile(latencies_ms, 0.99),
        "max_ms": latencies_ms[-1] if latencies_ms else float("nan"),
        "mean_ms": statistics.fmean(latencies_ms) if latencies_ms else float("nan"),
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": time.process_time(),
    }


def _screen_total(app: BenchApp) -> int:
    screen = app.screen
    return screen.buffer.total if isinstance(screen, LogsScreen) else 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| contender | lines produced (/s) | lines shown | key → handled p50 / p90 / p99 / max "
        "| answered | peak RSS | CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['contender']} | {r['produced']:,} ({r['produced'] / r['seconds']:,.0f}/s) "
            f"| {r['shown']:,} | {r['p50_ms']:.1f} / {r['p90_ms']:.1f} / {r['p99_ms']:.1f} / "
            f"{r['max_ms']:.1f} ms | {r['answered']}/{r['presses']} | {r['rss_mib']:.0f} MiB "
            f"| {r['cpu_s']:.1f} s |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.rate, args.seconds)))
        return
    results = []
    for contender in [c for _ in range(args.rounds) for c in CONTENDERS]:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "bench.console.log_ingest", "--one", contender),
                *("--rate", str(args.rate), "--seconds", str(args.seconds)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{contender}: {results[-1]}", file=sys.stderr)

    def median(contender: str, key: str) -> float:
        return float(statistics.median(r[key] for r in results if r["contender"] == contender))

    ours, baseline = (median(c, "p99_ms") for c in CONTENDERS)
    cpu_ours, cpu_baseline = (median(c, "cpu_s") for c in CONTENDERS)
    report = (
        f"### Log ingest ({datetime.now(UTC):%Y-%m-%d}, {args.rate:,} lines/s for "
        f"{args.seconds:.0f} s, headless 160×50, a key every {KEY_INTERVAL * 1000:.0f} ms)\n\n"
        + table(results)
        + f"\n\nMedians over {args.rounds} rounds: key → handled p99 {ours:.1f} ms "
        f"(logs-screen) vs {baseline:.1f} ms (Textual's Log), "
        f"ratio {baseline / max(ours, 1e-9):.2f}; CPU "
        f"{cpu_ours:.1f} s vs {cpu_baseline:.1f} s (the producer thread included in both)."
    )
    print(report)
    if args.write:
        readme.record("console-log-ingest", report)  # the block sits in the Console section


if __name__ == "__main__":
    main()
