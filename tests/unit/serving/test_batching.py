"""The micro-batcher's rules, with a plain function standing in for the model."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from serving.batching import MicroBatcher
from serving.errors import Overloaded
from serving.metrics import PredictorMetrics


class RecordingModel:
    """Doubles its input; remembers every batch size; can be held to pile up the queue."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, inputs: Any) -> dict[str, Any]:
        self.gate.wait()
        self.sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}


def batcher(model: RecordingModel, **kwargs: Any) -> MicroBatcher:
    options = {"max_batch_size": 8, "timeout_s": 0.05, "max_queued_instances": 64} | kwargs
    return MicroBatcher(model, ThreadPoolExecutor(1), PredictorMetrics(), **options)


def request(*values: float) -> dict[str, Any]:
    return {"x": np.array(values, dtype=np.float32)}


def test_concurrent_requests_share_a_batch_and_get_their_own_rows() -> None:
    model = RecordingModel()

    async def scenario() -> list[Any]:
        b = batcher(model)
        b.start()
        results = await asyncio.gather(*(b.submit(request(i, i + 0.5)) for i in range(4)))
        await b.stop()
        return results

    results = asyncio.run(scenario())
    assert model.sizes == [8]
    for i, result in enumerate(results):
        assert result["y"].tolist() == [2 * i, 2 * i + 1]


def test_a_batch_never_exceeds_the_largest_size_counting_instances() -> None:
    model = RecordingModel()

    async def scenario() -> None:
        b = batcher(model, max_batch_size=4)
        b.start()
        await asyncio.gather(*(b.submit(request(1, 2, 3)) for _ in range(3)))
        await b.stop()

    asyncio.run(scenario())
    assert sorted(model.sizes) == [3, 3, 3]  # 3+3 would be 6 > 4: never joined


def test_a_lone_request_waits_only_until_its_deadline() -> None:
    model = RecordingModel()

    async def scenario() -> None:
        b = batcher(model, timeout_s=0.01)
        b.start()
        await asyncio.wait_for(b.submit(request(1)), timeout=5)
        await b.stop()

    asyncio.run(scenario())
    assert model.sizes == [1]


def test_overflow_is_refused_at_once_with_retry_after() -> None:
    model = RecordingModel()
    model.gate.clear()  # the model is busy: the queue fills up

    async def scenario() -> None:
        b = batcher(model, max_batch_size=2, max_queued_instances=4, timeout_s=0.0)
        b.start()
        running = asyncio.create_task(b.submit(request(0, 0)))
        await asyncio.sleep(0.05)  # the first batch is now inside the model
        queued = [asyncio.create_task(b.submit(request(1, 1))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await b.submit(request(9))
        assert refused.value.headers == {"Retry-After": "1"}
        assert b.queued_instances == 4
        model.gate.set()
        await asyncio.gather(running, *queued)
        await b.stop()

    asyncio.run(scenario())


def test_a_model_failure_reaches_every_request_of_the_batch() -> None:
    def broken(inputs: Any) -> dict[str, Any]:
        raise RuntimeError("out of memory")

    async def scenario() -> list[BaseException | dict[str, Any]]:
        b = MicroBatcher(
            broken,
            ThreadPoolExecutor(1),
            PredictorMetrics(),
            max_batch_size=8,
            timeout_s=0.02,
            max_queued_instances=64,
        )
        b.start()
        results = await asyncio.gather(
            *(b.submit(request(1)) for _ in range(3)), return_exceptions=True
        )
        await b.stop()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "out of memory" in str(r) for r in results)
