"""Both protocols answer with the model's own numbers, in the shapes real clients expect."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, reference_outputs
from tests.support.predictor import PredictorProcess

TOLERANCE = {"savedmodel": 1e-5, "tflite": 1e-5, "tflite-int8": 1e-6}


# Every runtime on the default transport; the lean one with the manifest's default runtime (the
# transports share the handlers, so one runtime there shows the numbers arrive unchanged).
@pytest.mark.parametrize(
    ("runtime", "http_server"),
    [
        ("savedmodel", "aiohttp"),
        ("tflite", "aiohttp"),
        ("tflite-int8", "aiohttp"),
        ("tflite-int8", "httptools"),
    ],
)
def test_v1_and_v2_predictions_equal_the_models_own_output(
    tiny_model: TinyModel, start_predictor: StartPredictor, runtime: str, http_server: str
) -> None:
    images = tiny_model.images[:8]
    expected = reference_outputs(tiny_model, runtime, images)
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.store_root),
        "--model-name",
        tiny_model.name,
        "--runtime",
        runtime,
        http_server=http_server,
    )
    predictor.wait_ready()
    assert f"({http_server})" in predictor.log()

    rows = [
        predictor.post("/v1/models/digits:predict", {"instances": [img.tolist()]}) for img in images
    ]
    assert all(r.status_code == 200 for r in rows)
    v1 = np.array([r.json()["predictions"][0] for r in rows])
    np.testing.assert_allclose(v1, expected, atol=TOLERANCE[runtime])

    answer = predictor.post(
        "/v2/models/digits/infer",
        {
            "id": "req-1",
            "inputs": [
                {
                    "name": "image",
                    "shape": list(images.shape),
                    "datatype": "FP32",
                    "data": images.ravel().tolist(),
                }
            ],
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["model_name"] == "digits"
    assert body["id"] == "req-1"
    assert body["model_version"] == str(tiny_model.version)
    (output,) = body["outputs"]
    assert output["name"] == "scores"
    assert output["datatype"] == "FP32"
    assert output["shape"] == [8, 10]
    np.testing.assert_allclose(
        np.array(output["data"]).reshape(8, 10), expected, atol=TOLERANCE[runtime] * 10
    )


def test_v1_columnar_inputs_answer_outputs(
    ready_predictor: PredictorProcess, tiny_model: TinyModel
) -> None:
    images = tiny_model.images[:3].tolist()
    by_rows = ready_predictor.post("/v1/models/digits:predict", {"instances": images}).json()
    by_columns = ready_predictor.post("/v1/models/digits:predict", {"inputs": images}).json()
    named = ready_predictor.post("/v1/models/digits:predict", {"inputs": {"image": images}}).json()
    named_rows = ready_predictor.post(
        "/v1/models/digits:predict", {"instances": [{"image": i} for i in images]}
    ).json()
    assert np.array(by_rows["predictions"]).shape == (3, 10)
    assert by_columns["outputs"] == named["outputs"]
    np.testing.assert_allclose(by_rows["predictions"], by_columns["outputs"], atol=1e-6)
    np.testing.assert_allclose(named_rows["predictions"], by_rows["predictions"], atol=1e-6)


def test_more_instances_than_the_largest_batch_are_split_and_all_answered(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir), "--max-batch-size", "4")
    predictor.wait_ready()
    images = tiny_model.images[:11]
    answer = predictor.post("/v1/models/digits:predict", {"instances": images.tolist()})
    assert answer.status_code == 200
    expected = reference_outputs(tiny_model, "tflite-int8", images)
    np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-6)


def test_v2_outputs_can_be_asked_for_by_name(
    ready_predictor: PredictorProcess, tiny_model: TinyModel
) -> None:
    image = tiny_model.images[0]
    answer = ready_predictor.post(
        "/v2/models/digits/versions/1/infer",
        {
            "inputs": [
                {"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": image.tolist()}
            ],
            "outputs": [{"name": "scores"}],
        },
    )
    assert answer.status_code == 200
    assert [o["name"] for o in answer.json()["outputs"]] == ["scores"]
    assert "id" not in answer.json()


def test_metadata_endpoints_describe_the_served_model(ready_predictor: PredictorProcess) -> None:
    server = ready_predictor.get("/v2").json()
    assert server["name"] == "fleetdeck-predictor"
    v2 = ready_predictor.get("/v2/models/digits").json()
    assert v2["name"] == "digits"
    assert v2["versions"] == ["1"]
    assert v2["platform"] == "tflite"
    assert v2["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8, 1]}]
    assert v2["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]}]
    assert ready_predictor.get("/v2/models/digits/ready").json() == {
        "name": "digits",
        "ready": True,
    }

    status = ready_predictor.get("/v1/models/digits").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert status["model_version_status"][0]["version"] == "1"
    assert ready_predictor.get("/v1/models/digits/versions/1").status_code == 200
    meta = ready_predictor.get("/v1/models/digits/metadata").json()
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["image"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["image"]["tensor_shape"]["dim"]] == [
        "-1",
        "8",
        "8",
        "1",
    ]


def test_health_answers_json_bodies(ready_predictor: PredictorProcess) -> None:
    live = ready_predictor.get("/v2/health/live")
    ready = ready_predictor.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert live.headers["Content-Type"].startswith("application/json")


def test_the_root_answers_kserve_liveness(ready_predictor: PredictorProcess) -> None:
    """KServe's ModelServer answers GET / with {"status": "alive"}, and its V1 REST client
    (kserve.InferenceRESTClient) asks it before a prediction; any other method is 405."""
    alive = ready_predictor.get("/")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert alive.headers["Content-Type"].startswith("application/json")
    posted = ready_predictor.post("/", {})
    assert (posted.status_code, posted.headers["Allow"]) == (405, "GET")


def test_the_served_name_can_be_overridden(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    predictor = start_predictor(
        "--model-uri", str(tiny_model.version_dir), "--model-name", "photo-tags"
    )
    predictor.wait_ready()
    image = tiny_model.images[0].tolist()
    assert (
        predictor.post("/v1/models/photo-tags:predict", {"instances": [image]}).status_code == 200
    )
    assert predictor.post("/v1/models/digits:predict", {"instances": [image]}).status_code == 404


def test_flags_can_come_from_the_environment(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    predictor = start_predictor(
        env={
            "FLEETDECK_MODEL_URI": str(tiny_model.store_root),
            "FLEETDECK_MODEL_NAME": "digits",
            "FLEETDECK_VERSION": "latest",
            "FLEETDECK_RUNTIME": "tflite",
        }
    )
    predictor.wait_ready()
    assert predictor.get("/v2/models/digits").json()["platform"] == "tflite"
    assert "as tflite" in predictor.log()
