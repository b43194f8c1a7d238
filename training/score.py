"""``python -m training.score``: precompute a model version's outputs for a set of keyed inputs.

Reads keyed inputs (the data-set format with a key per example, see ``training.data``) from a
folder or HDFS, runs the version in large batches on every core, and publishes the outputs as a
precomputed table into that version's folder (``serving.precomputed``), which predictors then
answer ``{"keys": [...]}`` requests from without running the model.

Every flag is also an environment variable for the Job (``--input`` is ``FLEETDECK_INPUT``,
``--store`` is ``FLEETDECK_STORE``, ...). Logs one human line and one JSON line per event
(``start``, ``progress`` with done/total and examples/s, ``published``, ``interrupted``,
``failed``). Exit status: 0 published, 1 failed (the last log line says why), 2 bad usage,
143 stopped by SIGTERM/SIGINT with nothing published.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.envflags import EnvDefaultParser, positive_int
from serving.manifest import RUNTIME_PATHS, Manifest
from serving.precomputed import order_keys, write_table
from serving.runtime import LiteRTRuntime, Runtime, SavedModelRuntime, choose_runtime
from serving.store import ModelStore, check_model_name, utc_now
from training.data import DataError, load_keyed_inputs
from training.fit import Interrupted, StopFlag, new_run_id, run_job
from training.logs import TrainingLog

DEFAULT_BATCH_SIZE = 1024
PROGRESS_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class ScoringSpec:
    model: str
    version: int | None  # None: the latest published version
    input: str
    store: str
    batch_size: int = DEFAULT_BATCH_SIZE
    runtime: str = "auto"
    run_id: str = ""


def _version(text: str) -> int | None:
    if text == "latest":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'latest', got {text!r}")
    return int(text)


def build_parser() -> EnvDefaultParser:
    parser = EnvDefaultParser(
        prog="python -m training.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_env_option
    add("--model", required=True, help="model name in the store")
    add("--version", type=_version, required=True, help="version number to score, or 'latest'")
    add("--input", required=True, help="keyed inputs: a folder, file:// or hdfs:// data set")
    add("--store", required=True, help="model store root: a folder, file:// or hdfs://")
    add(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="examples per model call (large batches use every core)",
    )
    add(
        "--runtime",
        choices=("auto", *RUNTIME_PATHS),
        default="auto",
        help="auto scores with the runtime predictors serve by default (the manifest's), so a "
        "key's answer equals the tensor's",
    )
    add("--run-id", default="", help="identifies this job in logs and the manifest")
    return parser


def spec_from_args(argv: Sequence[str] | None = None) -> ScoringSpec:
    args = build_parser().parse_args(argv)
    return ScoringSpec(
        model=args.model,
        version=args.version,
        input=args.input,
        store=args.store,
        batch_size=args.batch_size,
        runtime=args.runtime,
        run_id=args.run_id or new_run_id().replace("run-", "score-", 1),
    )


def bulk_runtime(name: str, folder: Path, manifest: Manifest, batch_size: int) -> Runtime:
    """The version's model set up for throughput: one batch shape, every core (a LiteRT
    interpreter of 16+ rows runs on all usable cores; TensorFlow sizes its pools to them)."""
    path = folder / RUNTIME_PATHS[name]
    if name == "savedmodel":
        return SavedModelRuntime(path, manifest.signature, (batch_size,))
    return LiteRTRuntime(path, manifest.signature, (batch_size,), name=name)


def score(spec: ScoringSpec, out: TrainingLog, stop: StopFlag | None = None) -> Manifest:
    """Score every input and publish the table; raises ``Interrupted`` (nothing published) when
    ``stop`` is set before the manifest is replaced."""
    stop = stop or StopFlag()

    def checkpoint(done: int = 0, total: int = 0) -> None:
        if stop.signal is not None:
            out.event(
                "interrupted",
                f"stopped by {stop.signal} after {done:,}/{total:,} examples; nothing published",
                signal=stop.signal,
                done=done,
                total=total,
                run_id=spec.run_id,
            )
            raise Interrupted(stop.signal)

    check_model_name(spec.model)
    store = ModelStore(spec.store)
    version = spec.version if spec.version is not None else store.latest_version(spec.model)
    manifest = store.manifest(spec.model, version)
    inputs = load_keyed_inputs(spec.input)
    order_keys(inputs.keys, where=spec.input)  # duplicates fail now, not after the model ran
    model_inputs = manifest.signature.inputs
    if len(model_inputs) != 1 or inputs.images.shape[1:] != model_inputs[0].instance_shape:
        raise DataError(
            f"{spec.input}: examples of shape {list(inputs.images.shape[1:])}, but "
            f"{spec.model} version {version} takes "
            + ", ".join(f"{s.name} {list(s.instance_shape)}" for s in model_inputs)
        )
    total = len(inputs.keys)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-score-") as tmp:
        scratch = Path(tmp)
        fetched = store.fetch(spec.model, version, scratch / "cache")
        runtime_name = choose_runtime(spec.runtime, fetched.manifest)
        checkpoint(0, total)
        runtime = bulk_runtime(runtime_name, fetched.path, fetched.manifest, spec.batch_size)
        out.event(
            "start",
            f"scoring {total:,} examples from {spec.input} with {spec.model} version {version} "
            f"({runtime_name}, batches of {spec.batch_size}, {spec.run_id})",
            model=spec.model,
            version=version,
            input=spec.input,
            total=total,
            runtime=runtime_name,
            batch_size=spec.batch_size,
            run_id=spec.run_id,
        )
        outputs, seconds = _run(runtime, model_inputs[0].name, inputs.images, spec, out, checkpoint)
        rate = total / seconds if seconds > 0 else 0.0
        rows = write_table(
            scratch / "table", inputs.keys, [outputs[o.name] for o in manifest.signature.outputs]
        )
        details: dict[str, Any] = {
            "rows": rows,
            "runtime": runtime_name,
            "source": spec.input,
            "created": utc_now(),
            "job": spec.run_id,
            "bytes": sum(p.stat().st_size for p in (scratch / "table").iterdir()),
            "examples_per_s": round(rate, 1),
        }
        updated = store.publish_table(
            spec.model,
            version,
            scratch / "table",
            details,
            checkpoint=lambda: checkpoint(total, total),
        )
    info = updated.precomputed
    assert info is not None
    uri = store.version_uri(spec.model, version)
    out.event(
        "published",
        f"published a table of {rows:,} keys to {uri}/{info.path} "
        f"({details['bytes'] / 1e6:.1f} MB, {rate:,.0f} examples/s)",
        model=spec.model,
        version=version,
        uri=uri,
        path=info.path,
        rows=rows,
        bytes=details["bytes"],
        examples_per_s=details["examples_per_s"],
        seconds=round(seconds, 3),
        run_id=spec.run_id,
    )
    return updated


def _run(
    runtime: Runtime,
    input_name: str,
    images: npt.NDArray[np.float32],
    spec: ScoringSpec,
    out: TrainingLog,
    checkpoint: Callable[[int, int], None],
) -> tuple[dict[str, npt.NDArray[Any]], float]:
    """Every example through the model, batch by batch; the outputs and the seconds taken."""
    total = len(images)
    parts: list[dict[str, npt.NDArray[Any]]] = []
    started = last_report = time.perf_counter()
    done = 0
    for start in range(0, total, spec.batch_size):
        checkpoint(done, total)
        batch = images[start : start + spec.batch_size]
        parts.append(runtime.predict({input_name: batch}))
        done += len(batch)
        now = time.perf_counter()
        if now - last_report >= PROGRESS_EVERY_SECONDS or done == total:
            last_report = now
            rate = done / (now - started) if now > started else 0.0
            out.event(
                "progress",
                f"{done:,}/{total:,} examples  {rate:,.0f} examples/s",
                done=done,
                total=total,
                examples_per_s=round(rate, 1),
                seconds=round(now - started, 3),
                run_id=spec.run_id,
            )
    seconds = time.perf_counter() - started
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}, seconds


def main(argv: Sequence[str] | None = None) -> int:
    spec = spec_from_args(argv)
    return run_job(lambda out, stop: score(spec, out, stop), spec.run_id)


if __name__ == "__main__":
    sys.exit(main())
