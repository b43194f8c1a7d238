"""Training benchmark: our training run against plain Keras, export time, runtime latency.

    python -m bench.training.run [--epochs 8] [--rounds 2] [--write]

In one run: ``python -m training`` and a plain ``keras.Model.fit`` of the same model, data,
split and batch size (bench/training/plain_fit.py), alternated ``--rounds`` times, compared on
examples/s over the epochs after the first (the first pays tracing); the time to export all
three formats; and the single-instance latency of the exported model under LiteRT int8, LiteRT
float32 and SavedModel, through the predictor's own runtimes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.readme import record

ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 64


def python(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def steady(epochs: list[dict[str, Any]]) -> float:
    return float(statistics.median(e["examples_per_s"] for e in epochs[1:]))


def latency_us(runtime_name: str, folder: Path, iterations: int = 3000) -> tuple[float, float]:
    from serving.manifest import Manifest
    from serving.runtime import load_runtime
    from serving.served_model import warm_up

    manifest = Manifest.from_json(
        json.loads((folder / "manifest.json").read_text()), source=str(folder)
    )
    runtime = load_runtime(runtime_name, folder, manifest, 1)
    warm_up(runtime)
    image = {"image": np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)}
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        runtime.predict(image)
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-training-") as tmp:
        data, store = f"{tmp}/digits", f"{tmp}/store"
        subprocess.run(
            [sys.executable, "-m", "training.data", "sample", data],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        ours, plain, exports = [], [], []
        for _ in range(args.rounds):
            events = python(
                "-m",
                "training",
                "--model",
                "digits",
                "--data",
                data,
                "--store",
                store,
                "--epochs",
                str(args.epochs),
                "--batch-size",
                str(BATCH_SIZE),
            )
            ours.append(steady([e for e in events if e.get("event") == "epoch"]))
            exports.append(
                next(e for e in events if e.get("event") == "exported")["export_seconds"]
            )
            plain.append(
                steady(
                    python("bench/training/plain_fit.py", data, str(args.epochs), str(BATCH_SIZE))
                )
            )
            print(
                f"  round: ours {ours[-1]:,.0f} examples/s, plain Keras {plain[-1]:,.0f}",
                flush=True,
            )
        folder = Path(store) / "digits" / "1"
        latencies = {
            name: latency_us(name, folder) for name in ("tflite-int8", "tflite", "savedmodel")
        }
    ratio = statistics.median(ours) / statistics.median(plain)
    lines = [
        f"### Training ({datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores; digits sample, "
        f"1,437 training examples, batch {BATCH_SIZE}, {args.epochs} epochs, {args.rounds} "
        "rounds alternated)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| `python -m training`, examples/s (median of rounds) | {statistics.median(ours):,.0f} |",
        f"| plain `keras.Model.fit`, examples/s | {statistics.median(plain):,.0f} |",
        f"| ratio (target ≥ 0.95) | {ratio:.2f} |",
        f"| export SavedModel + LiteRT f32 + int8, with evaluation, s | "
        f"{statistics.median(exports):.2f} |",
        "",
        "| runtime, one instance | p50 µs | p99 µs |",
        "|---|---|---|",
        *(f"| {name} | {p50:.1f} | {p99:.1f} |" for name, (p50, p99) in latencies.items()),
        "",
    ]
    report = "\n".join(lines)
    print("\n" + report)
    if args.write:
        record("training", report, heading="## Training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
