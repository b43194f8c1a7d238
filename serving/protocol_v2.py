"""Open Inference Protocol (KServe V2) over JSON: request parsing and response shapes.

Only JSON tensors are spoken: a request carrying binary tensor data (tritonclient's default)
is refused with a message saying to send ``binary_data=False``.
"""

from __future__ import annotations

from typing import Any

from serving import __version__
from serving.batching import Arrays
from serving.errors import BadRequest
from serving.protocol_v1 import check_same_batch
from serving.tensors import NUMPY_FROM_V2, Signature, from_flat

SERVER_NAME = "fleetdeck-predictor"


def parse_infer(body: Any, signature: Signature) -> tuple[Arrays, str | None, list[str]]:
    """The input batches, the request id, and the names of the outputs asked for."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with an 'inputs' list")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    arrays: Arrays = {}
    for number, tensor in enumerate(inputs):
        where = f"inputs[{number}]"
        if not isinstance(tensor, dict):
            raise BadRequest(f"{where}: must be an object with name, shape, datatype and data")
        for key in ("name", "shape", "datatype", "data"):
            if key not in tensor:
                raise BadRequest(f"{where}: missing {key!r}")
        _refuse_binary(tensor.get("parameters"), where)
        spec = signature.input_named(str(tensor["name"]))
        where = f"inputs[{number}] ({spec.name})"
        if tensor["datatype"] != spec.v2_datatype:
            known = isinstance(tensor["datatype"], str) and tensor["datatype"] in NUMPY_FROM_V2
            raise BadRequest(
                f"{where}: datatype {tensor['datatype']!r} "
                f"{'does not match' if known else 'is not a datatype; expected'} "
                f"{spec.v2_datatype!r}"
            )
        if spec.name in arrays:
            raise BadRequest(f"{where}: input given twice")
        arrays[spec.name] = from_flat(spec, tensor["data"], tensor["shape"], where=where)
    missing = [s.name for s in signature.inputs if s.name not in arrays]
    if missing:
        raise BadRequest(f"missing input(s): {', '.join(missing)}")
    check_same_batch(arrays)
    return arrays, request_id, _requested_outputs(body.get("outputs"), signature)


def parse_id_and_outputs(
    body: dict[str, Any], signature: Signature
) -> tuple[str | None, list[str]]:
    """The request id and the outputs asked for, of a request without tensors (keys only)."""
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    return request_id, _requested_outputs(body.get("outputs"), signature)


def _refuse_binary(parameters: Any, where: str) -> None:
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        raise BadRequest(
            f"{where}: binary tensor data is not supported; send JSON tensors "
            "(tritonclient: binary_data=False)"
        )


def _requested_outputs(outputs: Any, signature: Signature) -> list[str]:
    known = [spec.name for spec in signature.outputs]
    if outputs is None:
        return known
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    names: list[str] = []
    for number, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise BadRequest(f"outputs[{number}]: must be an object with a 'name'")
        parameters = output.get("parameters")
        if isinstance(parameters, dict) and parameters.get("binary_data"):
            raise BadRequest(
                f"outputs[{number}]: binary output data is not supported (binary_data=False)"
            )
        if output["name"] not in known:
            raise BadRequest(
                f"outputs[{number}]: unknown output {output['name']!r}; known: {', '.join(known)}"
            )
        names.append(output["name"])
    return names


def encode_infer(
    model: str,
    version: int,
    request_id: str | None,
    outputs: Arrays,
    signature: Signature,
    names: list[str],
) -> dict[str, Any]:
    specs = {spec.name: spec for spec in signature.outputs}
    answer: dict[str, Any] = {
        "model_name": model,
        "model_version": str(version),
        "outputs": [
            {
                "name": name,
                "datatype": specs[name].v2_datatype,
                "shape": list(outputs[name].shape),
                "data": outputs[name].ravel(),
            }
            for name in names
        ],
    }
    if request_id is not None:
        answer["id"] = request_id
    return answer


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": []}


def model_metadata(name: str, version: int, platform: str, signature: Signature) -> dict[str, Any]:
    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.v2_datatype, "shape": list(s.shape)} for s in specs]

    return {
        "name": name,
        "versions": [str(version)],
        "platform": platform,
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
    }
