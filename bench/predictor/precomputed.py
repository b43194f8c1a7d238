"""Precomputed serving benchmark: key lookups against model predictions, and batch scoring
against the SavedModel called one example at a time, side by side in one run.

    python -m bench.predictor.precomputed [--duration 8] [--rounds 2] [--copies 50] [--write]

1. Scoring: the digits sample repeated ``--copies`` times (unique keys) is scored by the real
   job (``python -m training.score``) with its default runtime (LiteRT int8) and with the
   SavedModel in batches; the baseline calls the SavedModel's serving signature one example at a
   time in one process. Reported: the job's scoring-loop examples/s, its end-to-end examples/s
   (process start to exit: imports, fetch, publish), and the ratios.
2. Serving: one predictor process per runtime (LiteRT int8, SavedModel) serving the scored
   version, pinned to core 0, wrk on core 1. On the same predictor and the same load (wrk
   concurrency), requests either name a key (``{"keys": ["digit-00000"]}``, V2 ``key`` BYTES
   input) or send that example's tensor. A LiteRT predictor of the same version without a table
   serves the tensor bodies too, so the cost of the key check on the tensor path shows as a
   ratio. Each row's time is split into short turns taken in rotation across all rows, so a
   neighbour's burst of load lands on every row alike (the machine is shared).
Rounds repeat everything; every ratio is within one round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.predictor.run import (
    ROOT,
    SERVER_CORE,
    WRK_SCRIPT,
    free_port,
    train_model,
    wait_ready,
    wrk,
)
from bench.readme import record

CONCURRENCY = (16, 64)
V1, V2 = "/v1/models/digits:predict", "/v2/models/digits/infer"


@dataclass
class Round:
    scoring: dict[str, float] = field(default_factory=dict)
    serving: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)


def make_inputs(data: Path, target: Path, copies: int) -> int:
    from training.data import load_dataset, write_dataset

    sample = load_dataset(str(data))
    keys = np.array([f"{k}-{c}" if c else str(k) for c in range(copies) for k in sample.keys])
    write_dataset(
        str(target),
        sample.tags,
        np.concatenate([sample.images] * copies),
        np.concatenate([sample.labels] * copies),
        keys,
        shards=8,
    )
    return len(keys)


def run_scoring(store: Path, inputs: Path, runtime: str) -> tuple[float, float]:
    """The job's own scoring-loop examples/s, and examples per second of process wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.score",
            *("--model", "digits", "--version", "1", "--input", str(inputs)),
            *("--store", str(store), "--runtime", runtime),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    published = next(
        json.loads(line)
        for line in done.stdout.splitlines()
        if line.startswith('{"event": "published"')
    )
    return float(published["examples_per_s"]), published["rows"] / wall


def savedmodel_one_at_a_time(version: Path, data: Path, count: int) -> float:
    """Examples/s of the SavedModel's serving signature called with one example per call."""
    code = f"""
import time, numpy as np, tensorflow as tf
from training.data import load_dataset
images = load_dataset({str(data)!r}).images
fn = tf.saved_model.load({str(version / "saved_model")!r}).signatures["serving_default"]
for image in images[:50]:
    fn(image=tf.constant(image[np.newaxis]))
started = time.perf_counter()
for i in range({count}):
    fn(image=tf.constant(images[i % len(images)][np.newaxis]))["scores"].numpy()
print({count} / (time.perf_counter() - started))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return float(done.stdout.strip().splitlines()[-1])


@contextmanager
def predictor(store: Path, runtime: str, scratch: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    log = (scratch / f"predictor-{runtime}-{port}.log").open("wb")
    command = [
        "taskset",
        "-c",
        SERVER_CORE,
        sys.executable,
        "-m",
        "serving",
        *("--model-uri", str(store / "digits"), "--runtime", runtime),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--cache-dir", str(scratch / f"cache-{port}")),
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, process, started)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def bodies(store: Path) -> dict[str, tuple[str, bytes]]:
    v1_tensor = (store / "request.json").read_bytes()
    image = json.loads(v1_tensor)["instances"][0]
    flat = [pixel for row in image for col in row for pixel in col]
    tensor = {"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": flat}
    key = {"name": "key", "shape": [1], "datatype": "BYTES", "data": ["digit-00000"]}
    return {
        "V1 key": (V1, json.dumps({"keys": ["digit-00000"]}).encode()),
        "V1 tensor": (V1, v1_tensor),
        "V2 key": (V2, json.dumps({"inputs": [key]}).encode()),
        "V2 tensor": (V2, json.dumps({"inputs": [tensor]}).encode()),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_files(label: str, body: tuple[str, bytes], scratch: Path) -> tuple[Path, Path]:
    name = label.replace(" ", "-").replace(",", "").replace(":", "")
    body_file = scratch / f"{name}.json"
    body_file.write_bytes(body[1])
    script = scratch / f"{name}.lua"
    script.write_text(WRK_SCRIPT.format(body=body_file))
    return body_file, script


def serving_round(
    scored: Path, plain: Path, duration: float, slices: int, scratch: Path
) -> dict[tuple[str, int], dict[str, float]]:
    """Every (server, request) pair, measured in ``slices`` short runs taken in turn, so a
    neighbour's load lands on all of them alike rather than on whichever ran at that moment."""
    all_bodies = bodies(scored)
    plan: list[tuple[Path, str, str, list[str]]] = [
        (scored, "tflite-int8", "LiteRT int8", ["V1 key", "V1 tensor", "V2 key", "V2 tensor"]),
        (plain, "tflite-int8", "LiteRT int8, no table", ["V1 tensor", "V2 tensor"]),
        (scored, "savedmodel", "SavedModel", ["V1 key", "V1 tensor"]),
    ]
    results: dict[tuple[str, int], dict[str, float]] = {}
    with ExitStack() as stack:
        jobs = []
        for store, runtime, server, names in plan:
            port, pid = stack.enter_context(predictor(store, runtime, scratch))
            for name in names:
                label = f"{server}: {name}"
                path = all_bodies[name][0]
                jobs.append((label, port, pid, path, *wrk_files(label, all_bodies[name], scratch)))
        for _label, port, _pid, path, body_file, script in jobs:  # warm every path first
            wrk(port, path, body_file, script, 16, 1)
        turn = max(1, round(duration / slices))
        for concurrency in CONCURRENCY:
            samples: dict[str, list[dict[str, float]]] = {job[0]: [] for job in jobs}
            for _ in range(slices):
                for label, port, pid, path, body_file, script in jobs:
                    cpu_before = cpu_seconds(pid)
                    row = wrk(port, path, body_file, script, concurrency, turn)
                    # The server's own CPU per answered request: unlike req/s it barely moves
                    # when neighbours take the cores, so it shows what a quiet machine would.
                    row["cpu_us"] = (cpu_seconds(pid) - cpu_before) / (row["rps"] * turn) * 1e6
                    if row["errors"]:
                        raise RuntimeError(f"{label}: {row['errors']:.0f} errors")
                    samples[label].append(row)
            for label, rows in samples.items():
                merged = {
                    "rps": statistics.fmean(r["rps"] for r in rows),
                    "p50_ms": statistics.median(r["p50_ms"] for r in rows),
                    "p99_ms": statistics.median(r["p99_ms"] for r in rows),
                    "cpu_us": statistics.median(r["cpu_us"] for r in rows),
                }
                results[(label, concurrency)] = merged
                print(
                    f"  {label:<38} c={concurrency:<3} {merged['rps']:>8.0f} req/s  "
                    f"p50 {merged['p50_ms']:.2f} ms  p99 {merged['p99_ms']:.2f} ms  "
                    f"CPU {merged['cpu_us']:.0f} us/request",
                    flush=True,
                )
    return results


def key_check_cost() -> dict[str, float]:
    """Nanoseconds the key checks add to a tensor request (what every V1/V2 request pays)."""
    from serving.precomputed import v2_key_position

    v1 = {"instances": [[[[0.0]] * 8] * 8]}
    v2 = {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": []}]}
    count = 200_000
    v1_s = timeit.timeit(lambda: type(v1) is dict and "keys" in v1, number=count)
    v2_s = timeit.timeit(lambda: v2_key_position(v2), number=count)
    empty = timeit.timeit(lambda: None, number=count)
    return {"v1_ns": (v1_s - empty) / count * 1e9, "v2_ns": (v2_s - empty) / count * 1e9}


def report(rounds: list[Round], args: argparse.Namespace, examples: int) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    lines = [
        f"### Precomputed serving ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} "
        f"cores, {cpu}; {len(rounds)} rounds; {args.duration:.0f} s per row in {args.slices} "
        "interleaved turns, req/s the mean of the turns, p50/p99 their median; the machine was "
        "shared with other jobs during the run: absolute numbers are noisy, compare ratios "
        "within a round)",
        "",
        "| round | server: request | c | req/s | p50 ms | p99 ms | server CPU µs/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(rounds, 1):
        for (label, c), row in r.serving.items():
            lines.append(
                f"| {number} | {label} | {c} | {row['rps']:.0f} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row['cpu_us']:.0f} |"
            )
    lines += [
        "",
        f"Batch scoring, {examples:,} examples (the digits sample × {args.copies}):",
        "",
        "| round | how | examples/s |",
        "|---|---|---|",
    ]
    for number, r in enumerate(rounds, 1):
        s = r.scoring
        lines += [
            f"| {number} | SavedModel, one example per call (baseline) | {s['single']:,.0f} |",
            f"| {number} | `training.score`, LiteRT int8 (default), scoring loop | "
            f"{s['int8_loop']:,.0f} |",
            f"| {number} | `training.score`, LiteRT int8, process start to exit | "
            f"{s['int8_wall']:,.0f} |",
            f"| {number} | `training.score --runtime savedmodel`, scoring loop | "
            f"{s['saved_loop']:,.0f} |",
            f"| {number} | `training.score --runtime savedmodel`, process start to exit | "
            f"{s['saved_wall']:,.0f} |",
        ]
    lines += ["", "Targets (ratios within each round):", ""]
    lines += ["| measure | round | value | target | met |", "|---|---|---|---|---|"]
    for number, r in enumerate(rounds, 1):
        sv, s = r.serving, r.scoring
        checks = []
        for c in CONCURRENCY:
            key = sv[("LiteRT int8: V1 key", c)]
            checks += [
                (
                    f"key lookup / LiteRT int8 tensor, V1 c={c} req/s",
                    key["rps"] / sv[("LiteRT int8: V1 tensor", c)]["rps"],
                    ">= 1.2",
                ),
                (
                    f"key lookup / SavedModel tensor, V1 c={c} req/s",
                    sv[("SavedModel: V1 key", c)]["rps"] / sv[("SavedModel: V1 tensor", c)]["rps"],
                    ">= 5",
                ),
                (
                    f"key p99 / LiteRT int8 tensor p99, V1 c={c}",
                    key["p99_ms"] / sv[("LiteRT int8: V1 tensor", c)]["p99_ms"],
                    "< 1",
                ),
                (
                    f"LiteRT int8 tensor / key lookup, server CPU per request, V1 c={c}",
                    sv[("LiteRT int8: V1 tensor", c)]["cpu_us"] / key["cpu_us"],
                    ">= 1.2",
                ),
                (
                    f"SavedModel tensor / key lookup, server CPU per request, V1 c={c}",
                    sv[("SavedModel: V1 tensor", c)]["cpu_us"]
                    / sv[("SavedModel: V1 key", c)]["cpu_us"],
                    ">= 5",
                ),
                (
                    f"tensor path with a table / without, server CPU per request, V1 c={c}",
                    sv[("LiteRT int8: V1 tensor", c)]["cpu_us"]
                    / sv[("LiteRT int8, no table: V1 tensor", c)]["cpu_us"],
                    "< 1.05",
                ),
                (
                    f"tensor path with a table / without, V1 c={c} req/s",
                    sv[("LiteRT int8: V1 tensor", c)]["rps"]
                    / sv[("LiteRT int8, no table: V1 tensor", c)]["rps"],
                    ">= 0.95",
                ),
            ]
        checks += [
            (
                "scoring job (int8 loop) / SavedModel one at a time",
                s["int8_loop"] / s["single"],
                ">= 20",
            ),
            (
                "scoring job (int8, start to exit) / SavedModel one at a time",
                s["int8_wall"] / s["single"],
                ">= 20",
            ),
            (
                "scoring job (SavedModel loop) / SavedModel one at a time",
                s["saved_loop"] / s["single"],
                ">= 20",
            ),
        ]
        for name, value, target in checks:
            op, bound = target.split()
            met = value >= float(bound) if op == ">=" else value < float(bound)
            lines.append(
                f"| {name} | {number} | {value:.2f} | {target} | {'yes' if met else 'no'} |"
            )
    cost = key_check_cost()
    lines += [
        "",
        f"What the key check adds to every tensor request (timeit, in-process): V1 "
        f"{cost['v1_ns']:.0f} ns, V2 {cost['v2_ns']:.0f} ns.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk row")
    parser.add_argument("--rounds", type=int, default=2, help="times to repeat everything")
    parser.add_argument(
        "--slices", type=int, default=4, help="turns each row's time is split into (interleaved)"
    )
    parser.add_argument("--copies", type=int, default=50, help="sample copies to score")
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing: apt-get install -y wrk util-linux")
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-precomputed-") as tmp:
        scratch = Path(tmp)
        print("bench: training the digits model", flush=True)
        plain = scratch / "plain"
        train_model(plain)
        inputs = scratch / "inputs"
        examples = make_inputs(scratch / "digits-data", inputs, args.copies)
        for number in range(1, args.rounds + 1):
            print(f"bench: round {number}", flush=True)
            scored = scratch / f"scored-{number}"
            shutil.copytree(plain, scored, ignore=shutil.ignore_patterns("cache"))
            current = Round()
            # The baseline runs before and after the jobs: a neighbour's load shifts both alike.
            version, data = plain / "digits" / "1", scratch / "digits-data"
            single_before = savedmodel_one_at_a_time(version, data, 2000)
            saved_loop, saved_wall = run_scoring(scored, inputs, "savedmodel")
            int8_loop, int8_wall = run_scoring(scored, inputs, "tflite-int8")  # served table
            single = (single_before + savedmodel_one_at_a_time(version, data, 2000)) / 2
            current.scoring = {
                "single": single,
                "int8_loop": int8_loop,
                "int8_wall": int8_wall,
                "saved_loop": saved_loop,
                "saved_wall": saved_wall,
            }
            print(f"  scoring: {current.scoring}", flush=True)
            current.serving = serving_round(scored, plain, args.duration, args.slices, scratch)
            rounds.append(current)
        text = report(rounds, args, examples)
    print("\n" + text)
    if args.write:
        record("precomputed", text, heading="## Precomputed serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
