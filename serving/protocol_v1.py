"""TensorFlow Serving REST (V1): request parsing and response shapes, without HTTP.

``instances`` is the row format (a list of instances, each the tensor or a dict of named
tensors); ``inputs`` is the columnar format (the tensor, or a dict of named tensors, each
with the batch as its first dimension). Answers mirror the request: ``predictions`` for rows,
``outputs`` for columns.
"""

from __future__ import annotations

from typing import Any

from serving.batching import Arrays
from serving.errors import BadRequest
from serving.tensors import Signature, to_batch

SIGNATURE_NAME = "serving_default"
_TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "uint16": "DT_UINT16",
    "uint32": "DT_UINT32",
    "uint64": "DT_UINT64",
    "bool": "DT_BOOL",
}


def parse_predict(body: Any, signature: Signature) -> tuple[Arrays, bool]:
    """The request's input batches, and whether it used the row format."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'instances' or 'inputs'")
    name = body.get("signature_name", SIGNATURE_NAME)
    if name != SIGNATURE_NAME:
        raise BadRequest(f"unknown signature_name {name!r}; this model has {SIGNATURE_NAME!r}")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise BadRequest("give exactly one of 'instances' (row format) or 'inputs' (columnar)")
    if has_rows:
        return _rows(body["instances"], signature), True
    return _columns(body["inputs"], signature), False


def _rows(instances: Any, signature: Signature) -> Arrays:
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if len(signature.inputs) == 1 and not isinstance(instances[0], dict):
        spec = signature.inputs[0]
        return {spec.name: to_batch(spec, instances, where="instances")}
    columns: dict[str, list[Any]] = {spec.name: [] for spec in signature.inputs}
    for number, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise BadRequest(
                f"instances[{number}]: this model has several inputs; give each instance as "
                f"an object {{{', '.join(repr(n) for n in columns)}: ...}}"
            )
        for key in instance:
            signature.input_named(key)
        for spec_name, values in columns.items():
            if spec_name not in instance:
                raise BadRequest(f"instances[{number}]: missing input {spec_name!r}")
            values.append(instance[spec_name])
    return {
        spec.name: to_batch(spec, columns[spec.name], where=f"instances.{spec.name}")
        for spec in signature.inputs
    }


def _columns(inputs: Any, signature: Signature) -> Arrays:
    if not isinstance(inputs, dict):
        if len(signature.inputs) != 1:
            raise BadRequest("'inputs' must be an object naming each of the model's inputs")
        spec = signature.inputs[0]
        return {spec.name: to_batch(spec, inputs, where="inputs")}
    for key in inputs:
        signature.input_named(key)
    arrays: Arrays = {}
    for spec in signature.inputs:
        if spec.name not in inputs:
            raise BadRequest(f"inputs: missing input {spec.name!r}")
        arrays[spec.name] = to_batch(spec, inputs[spec.name], where=f"inputs.{spec.name}")
    check_same_batch(arrays)
    return arrays


def check_same_batch(arrays: Arrays) -> None:
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise BadRequest(f"inputs have different batch sizes: {sizes}")


def encode_predict(outputs: Arrays, signature: Signature, rows: bool) -> dict[str, Any]:
    names = [spec.name for spec in signature.outputs]
    if len(names) == 1:
        return {"predictions" if rows else "outputs": outputs[names[0]]}
    if not rows:
        return {"outputs": {name: outputs[name] for name in names}}
    count = len(outputs[names[0]])
    return {"predictions": [{name: outputs[name][i] for name in names} for i in range(count)]}


def model_status(version: int | None, state: str, error: str = "") -> dict[str, Any]:
    """TF Serving's status body, plus KServe V1's ``ready`` (its REST client reads only that)."""
    return {
        "ready": state == "AVAILABLE",
        "model_version_status": [
            {
                "version": str(version or 0),
                "state": state,
                "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error},
            }
        ],
    }


def model_metadata(name: str, version: int, signature: Signature) -> dict[str, Any]:
    def tensors(specs: Any) -> dict[str, Any]:
        return {
            spec.name: {
                "dtype": _TF_DTYPES[spec.dtype],
                "tensor_shape": {
                    "dim": [{"size": str(d), "name": ""} for d in spec.shape],
                    "unknown_rank": False,
                },
                "name": spec.name,
            }
            for spec in specs
        }

    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    SIGNATURE_NAME: {
                        "inputs": tensors(signature.inputs),
                        "outputs": tensors(signature.outputs),
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            }
        },
    }
