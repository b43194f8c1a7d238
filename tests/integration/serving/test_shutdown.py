"""SIGTERM under load: not ready at once, keep serving through the drain, lose no request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel

CLIENTS = 16


async def _hammer(url: str, body: Any, until: float) -> list[int]:
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            async with session.post(url, json=body) as answer:
                await answer.read()
                statuses.append(answer.status)
    return statuses


async def _load_through_sigterm(
    url: str, body: Any, ready_url: str, send_sigterm: Callable[[], None], drain: float
) -> tuple[list[int], int]:
    # The load runs from before SIGTERM to well inside the drain window: every request of it
    # is either in flight at SIGTERM or arrives while the predictor drains.
    until = time.monotonic() + 1.0 + drain * 0.6
    clients = [asyncio.create_task(_hammer(url, body, until)) for _ in range(CLIENTS)]
    await asyncio.sleep(1.0)
    send_sigterm()
    await asyncio.sleep(0.3)
    async with aiohttp.ClientSession() as session, session.get(ready_url) as ready:
        ready_status = ready.status
    statuses = [s for task in await asyncio.gather(*clients) for s in task]
    return statuses, ready_status


# Each transport once; TensorFlow (slow to load) only on the default one, the lean transport
# with LiteRT (its requests still wait in the micro-batcher, so some are in flight at SIGTERM).
@pytest.mark.parametrize(
    ("http_server", "runtime"),
    [("aiohttp", "savedmodel"), ("httptools", "tflite-int8")],
    ids=["aiohttp-savedmodel", "httptools-litert"],
)
def test_sigterm_under_concurrent_load_loses_no_request_and_exits_zero(
    tiny_model: TinyModel, start_predictor: StartPredictor, http_server: str, runtime: str
) -> None:
    drain = 3.0
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--drain-seconds",
        str(drain),
        "--runtime",
        runtime,
        "--batch-timeout-ms",
        "2",
        http_server=http_server,
    )
    predictor.wait_ready()
    body = {"instances": [tiny_model.images[0].tolist()]}
    statuses, ready_during_drain = asyncio.run(
        _load_through_sigterm(
            predictor.url + "/v1/models/digits:predict",
            body,
            predictor.url + "/v2/health/ready",
            predictor.terminate,
            drain,
        )
    )
    assert ready_during_drain == 503
    assert len(statuses) > CLIENTS
    assert set(statuses) == {200}
    assert predictor.wait() == 0
    log = predictor.log()
    assert "received SIGTERM" in log
    assert "draining" in log
    assert "stopped" in log
