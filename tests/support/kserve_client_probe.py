"""Ask a predictor what KServe's own REST client asks, and print what the client concluded.

Runs with the KServe virtualenv's interpreter (tests/support/kserve_venv.py), not the project's:
    python kserve_client_probe.py BASE_URL MODEL REQUEST_JSON
REQUEST_JSON holds {"instances": [...]} (V1); the same rows go out as one V2 tensor. Prints one
JSON object: liveness and readiness as the client saw them, and both protocols' predictions.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def probe(base_url: str, model: str, instances: list[Any]) -> dict[str, Any]:
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
    v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        rows = [[float(x) for x in _flatten(instance)] for instance in instances]
        shape = [len(instances), *_shape(instances[0])]
        data = [x for row in rows for x in row]
        tensor = InferInput(name="image", shape=shape, datatype="FP32", data=data)
        v2_answer = await v2.infer(
            base_url, InferRequest(model_name=model, infer_inputs=[tensor]), model_name=model
        )
        (output,) = v2_answer.outputs
        return {
            "v1_live": await v1.is_server_live(base_url),
            "v1_model_ready": await v1.is_model_ready(base_url, model),
            "v1_predictions": (
                await v1.infer(base_url, {"instances": instances}, model_name=model)
            )["predictions"],
            "v2_live": await v2.is_server_live(base_url),
            "v2_ready": await v2.is_server_ready(base_url),
            "v2_model_ready": await v2.is_model_ready(base_url, model),
            "v2_model_name": v2_answer.model_name,
            "v2_shape": list(output.shape),
            "v2_data": list(output.data),
        }
    finally:
        await v1.close()
        await v2.close()


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _flatten(item)]
    return [value]


def _shape(value: Any) -> list[int]:
    return [len(value), *_shape(value[0])] if isinstance(value, list) else []


if __name__ == "__main__":
    base_url, model, request_path = sys.argv[1:4]
    with open(request_path) as request:
        instances = json.load(request)["instances"]
    print(json.dumps(asyncio.run(probe(base_url, model, instances))))
