"""Every kind of bad request gets a JSON error with the right 4xx, never a 500 or a traceback."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.serving.conftest import HTTP_SERVERS
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

IMAGE = [[[0.5] for _ in range(8)] for _ in range(8)]
V1 = "/v1/models/digits:predict"
V2 = "/v2/models/digits/infer"


def v2_input(**overrides: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {
        "name": "image",
        "shape": [1, 8, 8, 1],
        "datatype": "FP32",
        "data": [0.5] * 64,
    }
    tensor.update(overrides)
    return {"inputs": [tensor]}


JSON_CASES = [
    # (path, body, status, words the error must contain)
    (V1, {"instances": [[[0.5] * 8] * 8]}, 400, "shape"),  # missing channel dimension: rank
    (V1, {"instances": [[[[0.5]] * 7] * 8]}, 400, "shape"),
    (V1, {"instances": [IMAGE[:7]]}, 400, "shape"),
    (V1, {"instances": [[["a"] * 8] * 8]}, 400, "float32"),
    (V1, {"instances": [IMAGE, IMAGE[:4]]}, 400, "rectangular"),
    (V1, {"instances": []}, 400, "non-empty"),
    (V1, {}, 400, "instances"),
    (V1, {"instances": [IMAGE], "inputs": [IMAGE]}, 400, "exactly one"),
    (V1, {"instances": [{"pixels": IMAGE}]}, 400, "unknown input"),
    (V1, {"instances": [IMAGE], "signature_name": "other"}, 400, "signature_name"),
    (V1, [IMAGE], 400, "JSON object"),
    (V1, {"instances": [[[[True]] * 8] * 8]}, 400, "booleans"),
    (V1, {"instances": [[[[1e39]] * 8] * 8]}, 400, "NaN or infinity"),
    (V2, v2_input(shape=[1, 8, 8]), 400, "shape"),
    (V2, v2_input(shape=[2, 8, 8, 1]), 400, "elements"),
    (V2, v2_input(datatype="INT32"), 400, "does not match"),
    (V2, v2_input(datatype="FLOAT"), 400, "not a datatype"),
    (V2, v2_input(name="pixels"), 400, "unknown input"),
    (V2, {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32"}]}, 400, "data"),
    (V2, {"inputs": []}, 400, "non-empty"),
    (V2, {"inputs": [{"name": "image"}]}, 400, "missing"),
    (V2, {**v2_input(), "outputs": [{"name": "logits"}]}, 400, "unknown output"),
    (V2, v2_input(parameters={"binary_data_size": 256}), 400, "binary_data=False"),
    (V2, v2_input(data=["x"] * 64), 400, "float32"),
    (V2, {**v2_input(), "id": 7}, 400, "'id'"),
    ("/v2/models/other/infer", v2_input(), 404, "not served here"),
    ("/v2/models/digits/versions/9/infer", v2_input(), 404, "version 9"),
    ("/v1/models/other:predict", {"instances": [IMAGE]}, 404, "not served here"),
    ("/v1/models/digits:classify", {"instances": [IMAGE]}, 404, "unknown verb"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), JSON_CASES)
def test_bad_json_requests_get_their_4xx_with_a_reason(
    ready_predictor: PredictorProcess, path: str, body: Any, status: int, words: str
) -> None:
    answer = ready_predictor.post(path, body)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert words in answer.json()["error"]


@pytest.mark.parametrize(
    ("raw", "headers", "status", "words"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid JSON"),
        (b'{"instances": [[[[NaN]]]]}', {"Content-Type": "application/json"}, 400, "invalid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "empty"),
        (
            b"instances=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "application/json",
        ),
        (
            b"\x00\x01",
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": "2"},
            415,
            "binary_data=False",
        ),
    ],
)
def test_unparseable_bodies_and_wrong_content_types_are_refused(
    ready_predictor: PredictorProcess, raw: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    answer = ready_predictor.post(V1, data=raw, headers=headers)
    assert answer.status_code == status
    assert words in answer.json()["error"]


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_body_over_the_limit_gets_413(
    tiny_model: TinyModel, start_predictor: StartPredictor, http_server: str
) -> None:
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--max-body-bytes",
        "4096",
        http_server=http_server,
    )
    predictor.wait_ready()
    answer = predictor.post(V1, {"instances": [IMAGE] * 40})
    assert answer.status_code == 413
    assert "4096" in answer.json()["error"]
    chunked = predictor.post(
        V1,
        data=iter([b'{"instances": [', b"0," * 4000, b"0]}"]),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    assert predictor.post(V1, {"instances": [IMAGE]}).status_code == 200


def test_unknown_paths_and_wrong_methods_get_json_404_and_405(
    ready_predictor: PredictorProcess,
) -> None:
    missing = ready_predictor.get("/v3/anything")
    assert (missing.status_code, "no such endpoint" in missing.json()["error"]) == (404, True)
    wrong = ready_predictor.post("/v2/health/ready", {})
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET"
    assert ready_predictor.get(V1).status_code == 405
    assert ready_predictor.http.put(ready_predictor.url + "/v1/models/digits").status_code == 405
    assert ready_predictor.get("/v2/models/digits/infer").status_code == 405


def test_bad_requests_leave_no_traceback_in_answers_or_errors_in_the_log(
    ready_predictor: PredictorProcess,
) -> None:
    for path, body, _, _ in JSON_CASES:
        assert "Traceback" not in ready_predictor.post(path, body).text
    assert "Traceback" not in ready_predictor.log()
    assert "internal error" not in ready_predictor.log()
