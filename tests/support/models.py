"""Real tiny models for tests: trained on scikit-learn's digits, exported in every format."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.store import ModelStore

MODEL = "digits"


@dataclass(frozen=True)
class TinyModel:
    store_root: Path
    name: str
    version: int
    images: npt.NDArray[np.float32]  # examples to send, shape (n, 8, 8, 1)

    @property
    def version_dir(self) -> Path:
        return self.store_root / self.name / str(self.version)

    def copy_store(self, into: Path) -> Path:
        """A private copy of the store, for tests that corrupt or change it."""
        target = into / "store"
        shutil.copytree(self.store_root, target)
        return target


def train_tiny_model(store_root: Path) -> TinyModel:
    """Train on the digits sample through the real training code and publish version 1."""
    import io

    from training.data import load_dataset, write_sample
    from training.fit import TrainingSpec, train
    from training.logs import TrainingLog

    data_uri = str(store_root.parent / "digits-data")
    write_sample(data_uri)
    spec = TrainingSpec(
        model=MODEL,
        data=data_uri,
        store=str(store_root),
        epochs=2,
        params={"width": 8},
        run_id="tests",
    )
    manifest = train(spec, TrainingLog(io.StringIO())).manifest
    return TinyModel(store_root, MODEL, manifest.version, load_dataset(data_uri).images[:64])


def reference_outputs(model: TinyModel, runtime: str, images: npt.NDArray[Any]) -> Any:
    """What the exported model itself computes, outside the predictor."""
    folder = model.version_dir
    if runtime == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(folder / "saved_model"))
        result = loaded.signatures["serving_default"](image=tf.constant(images))
        return result["scores"].numpy()
    from ai_edge_litert.interpreter import Interpreter

    path = folder / ("model.tflite" if runtime == "tflite" else "model.int8.tflite")
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    rows = []
    for image in images:  # one at a time, as the predictor's single-instance path runs
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    return np.stack(rows)


def store_of(model: TinyModel) -> ModelStore:
    return ModelStore(str(model.store_root))
