"""One training run: load data, build the model, fit with streamed epoch logs, export, publish.

SIGTERM (a cancelled Job, a pre-empted node) stops training at the next batch; nothing is
published and the run ends with status 143, so a partial model never reaches the store.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from serving.filesystems import StoreError
from serving.manifest import Manifest
from serving.store import ModelStore, check_model_name
from training.data import DataError, load_dataset
from training.export import export_and_publish
from training.logs import TrainingLog
from training.model import build_model
from training.params import MODEL_PARAMS

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 143  # 128 + SIGTERM, as a shell reports a process the signal ended


def run_job(work: Callable[[TrainingLog, StopFlag], object], run_id: str) -> int:
    """A job's process around ``work`` (training or scoring): JSON logs on stdout, SIGTERM and
    SIGINT stop it at the next batch. Exit 0 done, 1 failed (with a ``failed`` event saying
    why), 143 interrupted (nothing published)."""
    # TensorFlow's C++ start-up chatter would bury the lines a person tails.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    out = TrainingLog()
    stop = StopFlag()
    stop.install()
    try:
        work(out, stop)
    except Interrupted:
        return EXIT_INTERRUPTED
    except (DataError, StoreError, ValueError) as exc:
        out.event("failed", f"failed: {exc}", error=str(exc), run_id=run_id)
        return 1
    return 0


class Interrupted(Exception):
    """Training was stopped by a signal; nothing was published."""


@dataclass(frozen=True)
class TrainingSpec:
    model: str
    data: str
    store: str
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.003
    params: dict[str, Any] = field(default_factory=dict)
    val_split: float = 0.2
    seed: int = 7
    run_id: str = ""
    int8: bool = True
    mixed_precision: bool = False
    sweep: str | None = None
    trial: int | None = None

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of this run."""
        record: dict[str, Any] = {
            "run_id": self.run_id,
            "data": self.data,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "params": dict(self.params),
            "val_split": self.val_split,
            "seed": self.seed,
            "mixed_precision": self.mixed_precision,
        }
        if self.sweep is not None:
            record.update(sweep=self.sweep, trial=self.trial)
        return record


def new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class StopFlag:
    """Set by SIGTERM/SIGINT; checked by training after every batch."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name


def describe_device(tf: Any) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = []
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return f"GPU: {', '.join(names)}"


@dataclass(frozen=True)
class TrainedVersion:
    manifest: Manifest
    model: Any  # the trained keras.Model, as exported


def train(spec: TrainingSpec, out: TrainingLog, stop: StopFlag | None = None) -> TrainedVersion:
    check_model_name(spec.model)
    unknown = set(spec.params) - set(MODEL_PARAMS)
    if unknown:
        raise ValueError(
            f"unknown --param {', '.join(sorted(unknown))}; "
            f"the model takes: {', '.join(MODEL_PARAMS)}"
        )
    stop = stop or StopFlag()
    data = load_dataset(spec.data)
    store = ModelStore(spec.store)

    import keras
    import tensorflow as tf

    device = describe_device(tf)
    out.event(
        "start",
        f"training {spec.model} on {device} ({spec.run_id})",
        model=spec.model,
        device=device,
        examples=len(data.labels),
        tags=len(data.tags),
        **spec.record(),
    )
    if spec.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(spec.seed)
    train_set, val_set = data.split(spec.val_split, spec.seed)
    model = build_model(data.image_shape, len(data.tags), **spec.params)
    model.compile(
        optimizer=keras.optimizers.Adam(spec.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        train_set.images,
        train_set.labels,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        validation_data=(val_set.images, val_set.labels),
        verbose=0,
        shuffle=True,
        callbacks=[epoch_reporter(out, spec.epochs, len(train_set.labels), stop)],
    )
    if stop.signal is not None:
        out.event(
            "interrupted",
            f"stopped by {stop.signal}; nothing published",
            signal=stop.signal,
            run_id=spec.run_id,
        )
        raise Interrupted(stop.signal)
    export_started = time.perf_counter()
    manifest = export_and_publish(
        model,
        store,
        spec.model,
        labels=data.tags,
        validation=(val_set.images, val_set.labels),
        training=spec.record(),
        int8=spec.int8,
    )
    uri = store.version_uri(spec.model, manifest.version)
    out.event(
        "exported",
        f"published {spec.model} version {manifest.version} to {uri} "
        f"(default runtime {manifest.default_runtime}, "
        f"export {time.perf_counter() - export_started:.1f} s)",
        model=spec.model,
        version=manifest.version,
        uri=uri,
        run_id=spec.run_id,
        default_runtime=manifest.default_runtime,
        metrics=dict(manifest.metrics),
        export_seconds=round(time.perf_counter() - export_started, 3),
    )
    return TrainedVersion(manifest, model)


def epoch_reporter(out: TrainingLog, epochs: int, examples: int, stop: StopFlag) -> Any:
    """A Keras callback that logs each epoch's metrics and throughput and stops training when a
    signal arrives (built here so importing this module does not import TensorFlow)."""
    import keras

    class EpochReporter(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if stop.signal is not None:
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            seconds = time.perf_counter() - self.started
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            out.epoch(epoch + 1, epochs, metrics, examples / seconds, seconds)

    return EpochReporter()
