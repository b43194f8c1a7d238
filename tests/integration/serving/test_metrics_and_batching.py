"""Metrics move as requests arrive; micro-batching joins concurrent requests and sheds overload."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, reference_outputs
from tests.support.predictor import PredictorProcess


def scrape(predictor: PredictorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = predictor.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_protocol_and_code_and_time_them(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    predictor = start_predictor("--model-uri", str(tiny_model.version_dir))
    predictor.wait_ready()
    before = scrape(predictor)
    assert value(before, "fleetdeck_predictor_ready") == 1.0
    assert (
        value(
            before,
            "fleetdeck_predictor_model_info",
            model="digits",
            version="1",
            runtime="tflite-int8",
            source_model="digits",
        )
        == 1.0
    )
    image = tiny_model.images[0].tolist()
    for _ in range(5):
        predictor.post("/v1/models/digits:predict", {"instances": [image, image]})
    predictor.post(
        "/v2/models/digits/infer",
        {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": image}]},
    )
    predictor.post("/v1/models/digits:predict", {"instances": []})
    after = scrape(predictor)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("fleetdeck_predictor_requests_total", protocol="v1", code="200") == 5
    assert moved("fleetdeck_predictor_requests_total", protocol="v2", code="200") == 1
    assert moved("fleetdeck_predictor_requests_total", protocol="v1", code="400") == 1
    assert moved("fleetdeck_predictor_request_duration_seconds_count", protocol="v1") == 6
    assert moved("fleetdeck_predictor_request_duration_seconds_sum", protocol="v1") > 0
    assert moved("fleetdeck_predictor_instances_total") == 11
    assert moved("fleetdeck_predictor_inference_duration_seconds_count") == 6
    assert moved("fleetdeck_predictor_batch_size_bucket", le="1.0") == 1
    assert moved("fleetdeck_predictor_batch_size_bucket", le="2.0") == 6
    assert value(after, "fleetdeck_predictor_queue_depth") == 0


async def _concurrent(
    url: str, bodies: list[dict[str, Any]]
) -> list[tuple[int, Any, dict[str, str]]]:
    async with aiohttp.ClientSession() as session:

        async def one(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
            async with session.post(url, json=body) as answer:
                return answer.status, await answer.json(), dict(answer.headers)

        return await asyncio.gather(*(one(b) for b in bodies))


def test_concurrent_requests_are_joined_into_batches_and_each_gets_its_own_answer(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--runtime",
        "tflite",
        "--max-batch-size",
        "16",
        "--batch-timeout-ms",
        "50",
    )
    predictor.wait_ready()
    images = tiny_model.images[:32]
    answers = asyncio.run(
        _concurrent(
            predictor.url + "/v1/models/digits:predict",
            [{"instances": [image.tolist()]} for image in images],
        )
    )
    assert [status for status, _, _ in answers] == [200] * 32
    got = np.array([body["predictions"][0] for _, body, _ in answers])
    np.testing.assert_allclose(got, reference_outputs(tiny_model, "tflite", images), atol=1e-5)
    samples = scrape(predictor)
    batches = value(samples, "fleetdeck_predictor_batch_size_count")
    assert value(samples, "fleetdeck_predictor_batch_size_sum") == 32
    assert batches < 32  # joined, not one call per request
    assert value(samples, "fleetdeck_predictor_batch_size_bucket", le="16.0") == batches


def test_a_full_batching_queue_answers_503_with_retry_after_at_once(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    # The SavedModel path is slow enough that 64 simultaneous requests overflow a queue of 2x2.
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--runtime",
        "savedmodel",
        "--max-batch-size",
        "2",
        "--max-enqueued-batches",
        "2",
        "--batch-timeout-ms",
        "20",
    )
    predictor.wait_ready()
    answers = asyncio.run(
        _concurrent(
            predictor.url + "/v1/models/digits:predict",
            [{"instances": [tiny_model.images[0].tolist()]}] * 64,
        )
    )
    refused = [(body, headers) for status, body, headers in answers if status == 503]
    served = [status for status, _, _ in answers if status == 200]
    assert refused
    assert served
    assert len(refused) + len(served) == 64
    body, headers = refused[0]
    assert "queue full" in body["error"]
    assert headers["Retry-After"] == "1"
    assert value(
        scrape(predictor), "fleetdeck_predictor_requests_total", protocol="v1", code="503"
    ) == len(refused)
