"""Model runtimes: LiteRT (float32 and int8) and TensorFlow SavedModel, behind one interface.

Every runtime runs batches padded up to a fixed set of sizes (powers of two up to the largest
batch), so warm-up can exercise every shape the server will ever run and no request pays for
a first-time shape. TensorFlow is imported only when a SavedModel is served.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from serving.filesystems import StoreError
from serving.manifest import RUNTIME_PATHS, RUNTIMES, Manifest
from serving.tensors import Signature, TensorSpec

log = logging.getLogger(__name__)

Arrays = dict[str, npt.NDArray[Any]]
Predict = Callable[[Mapping[str, npt.NDArray[Any]]], Arrays]


class RuntimeLoadError(StoreError):
    """The model files are there but cannot be loaded as the chosen runtime."""


class Runtime(Protocol):
    name: str
    signature: Signature
    batch_sizes: tuple[int, ...]
    # Runs a batch of any size (padded or split internally); not thread-safe.
    predict: Predict


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not all the machine has."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


class BucketedRunner:
    """Runs any batch through fixed sizes: a batch of n goes to the smallest size >= n, padded
    with zeros; one larger than the largest size is split. The common case (n is itself a
    size, e.g. one instance) costs one dictionary lookup."""

    def __init__(self, sizes: tuple[int, ...], run_exact: Callable[[int, Arrays], Arrays]) -> None:
        self.sizes = sizes
        self._run_exact = run_exact
        self._largest = sizes[-1]
        self._size_for = [next(s for s in sizes if s >= n) for n in range(self._largest + 1)]

    def __call__(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        n = len(next(iter(inputs.values())))
        if n > self._largest:
            return self._split(inputs, n)
        size = self._size_for[n]
        if size == n:
            return self._run_exact(size, dict(inputs))
        padded = {k: _pad(v, size) for k, v in inputs.items()}
        return {k: v[:n] for k, v in self._run_exact(size, padded).items()}

    def _split(self, inputs: Mapping[str, npt.NDArray[Any]], n: int) -> Arrays:
        step = self._largest
        parts = [
            self({k: v[start : start + step] for k, v in inputs.items()})
            for start in range(0, n, step)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


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
        cores = usable_cores()
        for size in sizes:
            # One thread is fastest for small batches; large ones use every core.
            interpreter = Interpreter(model_content=content, num_threads=1 if size < 16 else cores)
            for spec in signature.inputs:
                interpreter.resize_tensor_input(
                    self._input_index[spec.name], [size, *spec.instance_shape], strict=False
                )
            interpreter.allocate_tensors()
            self._interpreters[size] = interpreter
        self.predict: Predict = BucketedRunner(sizes, self._run)

    def _run(self, size: int, inputs: Arrays) -> Arrays:
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
        # TensorFlow sizes its pools by the machine's cores, not the ones this process may use
        # (a container's CPU set, a taskset): oversubscribed pools thrash on the few it has.
        cores = usable_cores()
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
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
        self.predict: Predict = BucketedRunner(sizes, self._run)

    def _run(self, size: int, inputs: Arrays) -> Arrays:
        tf = self._tf
        result = self._function(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: result[name].numpy() for name in self._output_names}
