"""Micro-batching: gather concurrent requests' instances into one model call.

Counts instances, not requests. Each batch's deadline is computed once, when its first
instance arrives (never re-derived from elapsed time). The queue is bounded in instances and
rejects overflow at once, so an overloaded predictor answers 503 quickly instead of timing out.
Inference runs on one worker thread, off the event loop; the loop keeps filling the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.errors import Overloaded
from serving.metrics import PredictorMetrics

Arrays = dict[str, npt.NDArray[Any]]
Predict = Callable[[Mapping[str, npt.NDArray[Any]]], Arrays]


@dataclass
class _Pending:
    inputs: Mapping[str, npt.NDArray[Any]]
    count: int
    arrived: float
    future: asyncio.Future[Arrays] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        executor: Executor,
        metrics: PredictorMetrics,
        *,
        max_batch_size: int,
        timeout_s: float,
        max_queued_instances: int,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._metrics = metrics
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.max_queued_instances = max_queued_instances
        self._queue: deque[_Pending] = deque()
        self._queued_instances = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def queued_instances(self) -> int:
        return self._queued_instances

    async def submit(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        """Queue a request's instances and wait for their outputs."""
        assert self._wakeup is not None, "start() the batcher first"
        count = len(next(iter(inputs.values())))
        if self._queued_instances + count > self.max_queued_instances and self._queue:
            raise Overloaded(
                f"batching queue full ({self._queued_instances} instances waiting); retry shortly",
                headers={"Retry-After": "1"},
            )
        future: asyncio.Future[Arrays] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, count, time.monotonic(), future))
        self._queued_instances += count
        self._metrics.queue_depth.set(self._queued_instances)
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._queue[0].arrived + self.timeout_s
            while self._queued_instances < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take_batch()
            if batch:
                await self._execute(loop, batch)

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._queue:
            head = self._queue[0]
            if batch and size + head.count > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued_instances -= head.count
            if head.future.done():  # the client went away while waiting
                continue
            batch.append(head)
            size += head.count
        self._metrics.queue_depth.set(self._queued_instances)
        return batch

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        names = list(batch[0].inputs)
        if len(batch) == 1:
            joined = batch[0].inputs
        else:
            joined = {n: np.concatenate([p.inputs[n] for p in batch]) for n in names}
        size = sum(p.count for p in batch)
        started = time.perf_counter()
        try:
            outputs = await loop.run_in_executor(self._executor, self._predict, joined)
        except Exception as exc:  # the model failed: every waiting request learns why
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self._metrics.observe_batch(size, time.perf_counter() - started)
        offset = 0
        for pending in batch:
            end = offset + pending.count
            if not pending.future.done():
                pending.future.set_result({k: v[offset:end] for k, v in outputs.items()})
            offset = end
