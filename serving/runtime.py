"""Model runtimes: LiteRT (float32 and int8) and TensorFlow SavedModel, behind one interface.

Every runtime runs batches padded up to a fixed set of sizes (powers of two up to the largest
batch), so warm-up can exercise every shape the server will ever run and no request pays for
a first-time shape. TensorFlow is imported only when a SavedModel is served.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from serving.filesystems import StoreError
from serving.manifest import RUNTIME_PATHS, RUNTIMES, Manifest
from serving.tensors import Signature, TensorSpec

log = logging.getLogger(__name__)

Arrays = dict[str, npt.NDArray[Any]]


class RuntimeLoadError(StoreError):
    """The model files are there but cannot be loaded as the chosen runtime."""


class Runtime(Protocol):
    name: str
    signature: Signature
    batch_sizes: tuple[int, ...]

    def predict(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        """Run a batch of any size (split and padded internally); not thread-safe."""
        ...


def batch_sizes_up_to(largest: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to and including ``largest``."""
    sizes, size = [], 1
    while size < largest:
        sizes.append(size)
        size *= 2
    sizes.append(largest)
    return tuple(sizes)


def choose_runtime(requested: str, manifest: Manifest) -> str:
    available = manifest.runtimes()
    if requested != "auto":
        if requested not in RUNTIME_PATHS:
            raise RuntimeLoadError(
                f"unknown runtime {requested!r}: use auto or {', '.join(RUNTIMES)}"
            )
        if requested not in available:
            raise RuntimeLoadError(
                f"runtime {requested!r} asked, but {manifest.model} version {manifest.version} "
                f"carries only: {', '.join(available) or 'nothing loadable'}"
            )
        return requested
    if manifest.default_runtime in available:
        return manifest.default_runtime
    for name in ("tflite-int8", "tflite", "savedmodel"):
        if name in available:
            return name
    raise RuntimeLoadError(f"{manifest.model} version {manifest.version} carries no loadable model")


def load_runtime(name: str, folder: Path, manifest: Manifest, max_batch_size: int) -> Runtime:
    sizes = batch_sizes_up_to(max_batch_size)
    path = folder / RUNTIME_PATHS[name]
    if name == "savedmodel":
        return SavedModelRuntime(path, manifest.signature, sizes)
    return LiteRTRuntime(path, manifest.signature, sizes, name=name)


def _bucket(sizes: tuple[int, ...], n: int) -> int:
    for size in sizes:
        if size >= n:
            return size
    return sizes[-1]


def _run_in_buckets(
    sizes: tuple[int, ...],
    inputs: Mapping[str, npt.NDArray[Any]],
    run_padded: Any,
) -> Arrays:
    """Split a batch into chunks no larger than the largest size, pad each, and join results."""
    n = len(next(iter(inputs.values())))
    largest = sizes[-1]
    if n <= largest:
        return _run_one(sizes, inputs, n, run_padded)
    parts = [
        _run_one(
            sizes,
            {k: v[start : start + largest] for k, v in inputs.items()},
            min(largest, n - start),
            run_padded,
        )
        for start in range(0, n, largest)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _run_one(
    sizes: tuple[int, ...], inputs: Mapping[str, npt.NDArray[Any]], n: int, run_padded: Any
) -> Arrays:
    size = _bucket(sizes, n)
    if size != n:
        inputs = {k: _pad(v, size) for k, v in inputs.items()}
    outputs: Arrays = run_padded(size, inputs)
    if size != n:
        outputs = {k: v[:n] for k, v in outputs.items()}
    return outputs


def _pad(array: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    padded = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    padded[: len(array)] = array
    return padded


class LiteRTRuntime:
    """LiteRT (TFLite) through ``ai-edge-litert``: one interpreter per batch size."""

    def __init__(
        self, path: Path, signature: Signature, sizes: tuple[int, ...], *, name: str
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        self.signature = signature
        self.batch_sizes = sizes
        try:
            content = path.read_bytes()
            probe = Interpreter(model_content=content)
        except (OSError, ValueError, RuntimeError) as exc:
            raise RuntimeLoadError(f"{path.name}: cannot load as LiteRT: {exc}") from None
        runner = probe.get_signature_runner()
        self._input_index = _match_tensors(signature.inputs, runner.get_input_details(), path.name)
        self._output_index = _match_tensors(
            signature.outputs, runner.get_output_details(), path.name
        )
        self._interpreters: dict[int, Any] = {}
        cores = os.cpu_count() or 1
        for size in sizes:
            # One thread is fastest for small batches; large ones use every core.
            interpreter = Interpreter(model_content=content, num_threads=1 if size < 16 else cores)
            for spec in signature.inputs:
                interpreter.resize_tensor_input(
                    self._input_index[spec.name], [size, *spec.instance_shape], strict=False
                )
            interpreter.allocate_tensors()
            self._interpreters[size] = interpreter

    def predict(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        return _run_in_buckets(self.batch_sizes, inputs, self._run)

    def _run(self, size: int, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        interpreter = self._interpreters[size]
        for name, index in self._input_index.items():
            interpreter.set_tensor(index, inputs[name])
        interpreter.invoke()
        return {name: interpreter.get_tensor(index) for name, index in self._output_index.items()}


def _match_tensors(
    specs: tuple[TensorSpec, ...], details: Mapping[str, Mapping[str, Any]], source: str
) -> dict[str, int]:
    """Map the manifest's tensor names to the model's tensor indices, checking dtypes."""
    index: dict[str, int] = {}
    for spec in specs:
        if spec.name not in details:
            raise RuntimeLoadError(
                f"{source}: the manifest names tensor {spec.name!r} but the model has "
                f"{', '.join(details)}"
            )
        actual = np.dtype(details[spec.name]["dtype"]).name
        if actual != spec.dtype:
            raise RuntimeLoadError(
                f"{source}: tensor {spec.name!r} is {actual} in the model, "
                f"{spec.dtype} in the manifest"
            )
        index[spec.name] = int(details[spec.name]["index"])
    return index


class SavedModelRuntime:
    """A TensorFlow SavedModel's ``serving_default`` signature."""

    name = "savedmodel"

    def __init__(self, path: Path, signature: Signature, sizes: tuple[int, ...]) -> None:
        started = time.perf_counter()
        import tensorflow as tf

        log.info("tensorflow %s imported in %.1f s", tf.__version__, time.perf_counter() - started)
        self._tf = tf
        self.signature = signature
        self.batch_sizes = sizes
        try:
            self._loaded = tf.saved_model.load(str(path))
            self._function = self._loaded.signatures["serving_default"]
        except (OSError, ValueError, KeyError) as exc:
            raise RuntimeLoadError(
                f"{path.name}: cannot load the serving signature: {exc}"
            ) from None
        _, declared = self._function.structured_input_signature
        outputs = self._function.structured_outputs
        for spec in signature.inputs:
            if spec.name not in declared:
                raise RuntimeLoadError(
                    f"saved_model: no input {spec.name!r} in serving_default "
                    f"({', '.join(declared)})"
                )
        for spec in signature.outputs:
            if spec.name not in outputs:
                raise RuntimeLoadError(
                    f"saved_model: no output {spec.name!r} in serving_default "
                    f"({', '.join(outputs)})"
                )
        self._output_names = [spec.name for spec in signature.outputs]

    def predict(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        return _run_in_buckets(self.batch_sizes, inputs, self._run)

    def _run(self, size: int, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        tf = self._tf
        result = self._function(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: result[name].numpy() for name in self._output_names}
