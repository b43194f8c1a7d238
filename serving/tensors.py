"""Tensor specs and the validation every input passes before it reaches a model.

Inputs arrive as nested JSON lists; they are checked against the signature (dtype kind, rank,
shape, finiteness) and converted to numpy arrays, so a runtime only ever sees well-formed batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.errors import BadRequest

# Open Inference Protocol datatype names, both ways.
V2_DATATYPES: dict[str, str] = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
}
NUMPY_FROM_V2: dict[str, str] = {v: k for k, v in V2_DATATYPES.items()}

# Which kinds of JSON-decoded values a signature dtype accepts (numpy dtype kinds).
_ACCEPTED_KINDS: dict[str, str] = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}
# Lists of more values than this are converted a slice of about as many at a time: one numpy
# call over millions of JSON values holds the GIL for a second, and between slices other threads
# (the event loop) run. 16k values take ~1 ms.
CONVERT_SLICE_VALUES = 16384
_SMALL_LIST = 64  # items: never sliced, whatever each holds (the latency path's requests)
# Largest element count a V2 'shape' may name (numpy's own index limit).
_MAX_ELEMENTS = 2**63 - 1


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a signature. ``shape`` uses -1 for a free dimension (the batch)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def v2_datatype(self) -> str:
        return V2_DATATYPES[self.dtype]

    @cached_property
    def instance_shape(self) -> tuple[int, ...]:
        """The shape of one instance: the signature's shape without its batch dimension."""
        return self.shape[1:]

    @cached_property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)

    @cached_property
    def accepted_kinds(self) -> str:
        """Kinds of JSON-decoded arrays this input accepts (numpy dtype kinds)."""
        kind = self.numpy_dtype.kind
        return _ACCEPTED_KINDS.get(kind, kind)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TensorSpec:
        dtype = str(raw["dtype"])
        if dtype not in V2_DATATYPES:
            raise ValueError(f"tensor {raw.get('name')!r}: unsupported dtype {dtype!r}")
        return cls(str(raw["name"]), dtype, tuple(int(d) for d in raw["shape"]))


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Signature:
        return cls(
            tuple(TensorSpec.from_json(t) for t in raw["inputs"]),
            tuple(TensorSpec.from_json(t) for t in raw["outputs"]),
        )

    def input_named(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.inputs)
        raise BadRequest(f"unknown input {name!r}; the model's inputs are: {known}")


def to_batch(spec: TensorSpec, value: Any, *, where: str) -> npt.NDArray[Any]:
    """Convert a JSON batch (a list of instances) into an array that fits ``spec``.

    ``where`` names the field in the request, so the message says what to fix.
    """
    try:
        if type(value) is list and len(value) > _SMALL_LIST:
            raw = _as_array_in_slices(value)
        else:
            raw = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: not a rectangular array of numbers ({exc})") from None
    return _checked(spec, raw, where=where)


def _as_array_in_slices(value: list[Any]) -> npt.NDArray[Any]:
    """``np.asarray`` of a long list, a slice of about CONVERT_SLICE_VALUES values at a time."""
    values_per_item = max(1, np.asarray(value[0]).size)
    step = max(1, CONVERT_SLICE_VALUES // values_per_item)
    if len(value) <= step:
        return np.asarray(value)
    parts = [np.asarray(value[i : i + step]) for i in range(0, len(value), step)]
    if len({part.shape[1:] for part in parts}) > 1:
        raise ValueError("the instances have different shapes")
    return np.concatenate(parts)


def _checked(spec: TensorSpec, raw: npt.NDArray[Any], *, where: str) -> npt.NDArray[Any]:
    # The hot path of every prediction: the common case is three comparisons and one cast.
    target = spec.numpy_dtype
    if raw.dtype.kind not in spec.accepted_kinds and raw.size:
        raise BadRequest(
            f"{where}: expected {spec.dtype} values for input {spec.name!r}, "
            f"got {_describe_kind(raw.dtype)}"
        )
    shape = raw.shape
    if shape[1:] != spec.instance_shape and not (
        len(shape) == len(spec.shape) and _shape_fits(spec.instance_shape, shape[1:])
    ):
        want = "[batch, " + ", ".join("?" if d < 0 else str(d) for d in spec.instance_shape) + "]"
        raise BadRequest(
            f"{where}: input {spec.name!r} must have shape {want} (rank {len(spec.shape)}), "
            f"got {list(shape)}"
        )
    if not shape or shape[0] == 0:
        raise BadRequest(f"{where}: no instances given")
    array = raw.astype(target, copy=False)
    # A float64 sum of float32 values cannot overflow, so it is finite exactly when every
    # value is: one reduction instead of a temporary boolean array.
    if target.kind == "f" and not math.isfinite(array.sum(dtype=np.float64)):
        raise BadRequest(f"{where}: input {spec.name!r} contains NaN or infinity")
    if target.kind in "iu" and raw.dtype != target:
        info = np.iinfo(target)
        if raw.min() < info.min or raw.max() > info.max:
            raise BadRequest(f"{where}: input {spec.name!r} has values outside {spec.dtype} range")
    return array


def _shape_fits(expected: Sequence[int], got: Sequence[int]) -> bool:
    return len(expected) == len(got) and all(
        e < 0 or e == g for e, g in zip(expected, got, strict=True)
    )


def _describe_kind(dtype: np.dtype[Any]) -> str:
    return {"U": "strings", "S": "bytes", "O": "mixed values", "b": "booleans"}.get(
        dtype.kind, str(dtype)
    )


def from_flat(spec: TensorSpec, data: Any, shape: Any, *, where: str) -> npt.NDArray[Any]:
    """Build an array from the V2 form: flat (or nested) ``data`` plus an explicit ``shape``."""
    # type() is int, not isinstance: JSON true is a Python bool, which is an int subclass.
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers")
    needed = math.prod(shape)  # exact: numpy's product would wrap around past int64
    if needed > _MAX_ELEMENTS or any(d > _MAX_ELEMENTS for d in shape):
        raise BadRequest(f"{where}: 'shape' {shape} is larger than any array can be")
    try:
        if type(data) is list and len(data) > _SMALL_LIST:
            raw = _as_array_in_slices(data)
        else:
            raw = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: 'data' is not an array of numbers ({exc})") from None
    if raw.size != needed:
        raise BadRequest(
            f"{where}: 'data' has {raw.size} elements but 'shape' {shape} needs {needed}"
        )
    try:
        shaped = raw.reshape(shape)
    except (ValueError, OverflowError) as exc:  # e.g. a zero-size shape numpy cannot index
        raise BadRequest(f"{where}: 'shape' {shape} cannot be used ({exc})") from None
    return _checked(spec, shaped, where=where)
