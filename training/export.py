"""Export a trained Keras model as SavedModel, LiteRT float32 and LiteRT int8, and publish it.

The SavedModel's ``serving_default`` signature names its input and output tensors, and the
LiteRT conversions keep those names, so one manifest signature describes all three formats.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.manifest import FileEntry, Manifest
from serving.runtime import LiteRTRuntime
from serving.store import ModelStore, utc_now
from serving.tensors import Signature, TensorSpec
from training.model import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

REPRESENTATIVE_EXAMPLES = 200
EVALUATION_BATCH_SIZES = (256,)
# Keep int8 the default runtime only while it loses at most this much accuracy.
INT8_MAX_ACCURACY_LOSS = 0.01


def export_formats(
    model: Any, into: Path, representative: npt.NDArray[np.float32], *, int8: bool = True
) -> Signature:
    """Write saved_model/, model.tflite and (unless ``int8`` is off) model.int8.tflite."""
    import keras
    import tensorflow as tf

    instance_shape = tuple(int(d) for d in model.input_shape[1:])
    tags = int(model.output_shape[-1])
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[tf.TensorSpec([None, *instance_shape], tf.float32, name=INPUT_NAME)],
    )
    saved_model = into / "saved_model"
    archive.write_out(str(saved_model), verbose=False)

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    (into / "model.tflite").write_bytes(converter.convert())
    if int8:
        (into / "model.int8.tflite").write_bytes(_int8(saved_model, representative))
    return Signature(
        inputs=(TensorSpec(INPUT_NAME, "float32", (-1, *instance_shape)),),
        outputs=(TensorSpec(OUTPUT_NAME, "float32", (-1, tags)),),
    )


def _int8(saved_model: Path, representative: npt.NDArray[np.float32]) -> bytes:
    """Post-training full-integer quantization; float32 in and out so clients see no change."""
    import tensorflow as tf

    def examples() -> Iterator[list[npt.NDArray[np.float32]]]:
        for row in representative[:REPRESENTATIVE_EXAMPLES]:
            yield [row[np.newaxis].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = examples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    data: bytes = converter.convert()
    return data


def litert_accuracy(
    path: Path,
    signature: Signature,
    images: npt.NDArray[np.float32],
    labels: npt.NDArray[Any],
) -> float:
    """Accuracy of a LiteRT model on a labelled set, run by the predictor's own runtime."""
    runtime = LiteRTRuntime(path, signature, EVALUATION_BATCH_SIZES, name=path.name)
    scores = runtime.predict({INPUT_NAME: images.astype(np.float32)})[OUTPUT_NAME]
    return float((scores.argmax(axis=1) == labels).mean())


def publish(
    store: ModelStore,
    name: str,
    folder: Path,
    signature: Signature,
    *,
    labels: tuple[str, ...],
    metrics: Mapping[str, Any],
    training: Mapping[str, Any],
    default_runtime: str,
) -> Manifest:
    def describe(version: int, files: Mapping[str, FileEntry]) -> Manifest:
        return Manifest(
            model=name,
            version=version,
            created=utc_now(),
            signature=signature,
            files=files,
            default_runtime=default_runtime,
            labels=labels,
            metrics=dict(metrics),
            training=dict(training),
        )

    return store.publish(name, folder, describe)


def export_and_publish(
    model: Any,
    store: ModelStore,
    name: str,
    *,
    labels: tuple[str, ...],
    validation: tuple[npt.NDArray[np.float32], npt.NDArray[Any]],
    training: Mapping[str, Any],
    int8: bool = True,
) -> Manifest:
    """Export all formats, evaluate them on ``validation``, and publish the next version."""
    images, truth = validation
    with tempfile.TemporaryDirectory(prefix="fleetdeck-export-") as tmp:
        folder = Path(tmp)
        signature = export_formats(model, folder, images, int8=int8)
        scores = model.predict(images, verbose=0)
        metrics: dict[str, Any] = {
            "accuracy": float((scores.argmax(axis=1) == truth).mean()),
            "tflite_accuracy": litert_accuracy(folder / "model.tflite", signature, images, truth),
        }
        default_runtime = "tflite"
        if int8:
            metrics["int8_accuracy"] = litert_accuracy(
                folder / "model.int8.tflite", signature, images, truth
            )
            metrics["int8_accuracy_delta"] = metrics["int8_accuracy"] - metrics["tflite_accuracy"]
            if metrics["int8_accuracy_delta"] >= -INT8_MAX_ACCURACY_LOSS:
                default_runtime = "tflite-int8"
        return publish(
            store,
            name,
            folder,
            signature,
            labels=labels,
            metrics=metrics,
            training=training,
            default_runtime=default_runtime,
        )
