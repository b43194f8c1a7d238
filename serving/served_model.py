"""The one model a predictor serves, and its way to readiness:
resolve, fetch, verify, load, warm up.

Readiness turns true only at the end of that sequence; any failure leaves the predictor live
but never ready, with the reason logged and shown by the readiness endpoint.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.batching import Arrays, MicroBatcher
from serving.config import PredictorConfig
from serving.errors import NotReady
from serving.filesystems import StoreError
from serving.manifest import Manifest
from serving.metrics import PredictorMetrics
from serving.precomputed import PrecomputedTable, open_for
from serving.runtime import Runtime, choose_runtime, load_runtime
from serving.store import ModelStore, resolve

log = logging.getLogger(__name__)

# Below this per-call cost a model runs on the event loop itself: handing a 5 µs LiteRT call to
# a thread costs ten times the call. Slower models always run on the worker thread.
INLINE_SECONDS = 0.0002
WARM_UP_ROUNDS = 3
# An inline model runs a request of more instances than this in slices of as many, letting the
# loop answer others (probes above all) between slices: 131,000 digits take over a second.
INLINE_SLICE = 256


class Phase(enum.StrEnum):
    STARTING = "starting"
    FETCHING = "fetching"
    LOADING = "loading"
    WARMING_UP = "warming-up"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


@dataclass(frozen=True)
class Loaded:
    manifest: Manifest
    runtime: Runtime
    inline: bool
    table: PrecomputedTable | None = None  # outputs by key, when the version carries them


class ServedModel:
    def __init__(self, config: PredictorConfig, metrics: PredictorMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.phase = Phase.STARTING
        self.reason = "starting"
        self.name: str | None = config.model_name
        self.loaded: Loaded | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._batcher: MicroBatcher | None = None
        self._started = time.monotonic()

    # -- state --------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def require_serving(self) -> Loaded:
        """The loaded model, while it serves (ready, or draining after SIGTERM)."""
        if self.phase not in (Phase.READY, Phase.DRAINING) or self.loaded is None:
            raise NotReady(f"model not ready ({self.phase.value}: {self.reason})")
        return self.loaded

    def _enter(self, phase: Phase, reason: str) -> None:
        self.phase, self.reason = phase, reason
        log.info("%s: %s", phase.value, reason)

    def begin_drain(self) -> None:
        if self.phase is not Phase.FAILED:
            self._enter(Phase.DRAINING, "shutting down: draining in-flight requests")
        self.metrics.ready.set(0)

    # -- loading ------------------------------------------------------------------------------
    async def load(self) -> None:
        """Bring the model to ready; never raises: a failure is recorded as the phase FAILED."""
        loop = asyncio.get_running_loop()
        try:
            loaded = await loop.run_in_executor(self._executor, self._load_blocking)
        except (StoreError, ValueError, OSError, RuntimeError) as exc:
            self._enter(Phase.FAILED, str(exc))
            log.error("the model will not be served: %s", exc)
            return
        except Exception as exc:  # keep the predictor up and say why it will never be ready
            self._enter(Phase.FAILED, f"{type(exc).__name__}: {exc}")
            log.exception("unexpected failure while loading the model")
            return
        if self.phase is Phase.DRAINING:
            return
        self.loaded = loaded
        if self.config.batching:
            self._batcher = MicroBatcher(
                loaded.runtime.predict,
                self._executor,
                self.metrics,
                max_batch_size=self.config.max_batch_size,
                timeout_s=self.config.batch_timeout_ms / 1000,
                max_queued_instances=self.config.max_batch_size * self.config.max_enqueued_batches,
            )
            self._batcher.start()
        self.metrics.ready.set(1)
        total = time.monotonic() - self._started
        self.metrics.load_seconds.labels("total").set(total)
        table = (
            f" and a precomputed table of {len(loaded.table)} keys"
            if loaded.table is not None
            else ""
        )
        self._enter(
            Phase.READY,
            f"serving {loaded.manifest.model} version {loaded.manifest.version} "
            f"with {loaded.runtime.name}{table} ({total:.2f} s after start)",
        )

    def _load_blocking(self) -> Loaded:
        config = self.config
        self._enter(Phase.FETCHING, f"resolving {config.model_uri}")
        ref = resolve(config.model_uri, model=config.model_name, version=config.version)
        assert ref.model is not None
        store = ModelStore(ref.root)
        version = ref.version if ref.version is not None else store.latest_version(ref.model)
        self.name = config.model_name or ref.model
        self._enter(Phase.FETCHING, f"fetching {store.version_uri(ref.model, version)}")
        started = time.monotonic()
        fetched = store.fetch(ref.model, version, config.cache_dir)
        self.metrics.load_seconds.labels("fetch").set(time.monotonic() - started)
        manifest = fetched.manifest
        table = open_for(fetched.path, manifest)  # its files' sha256 were checked by fetch
        if table is not None:
            self.metrics.precomputed_rows.set(len(table))
            log.info(
                "precomputed table: %d keys, %.1f MB memory-mapped", len(table), table.nbytes / 1e6
            )
        runtime_name = choose_runtime(config.runtime, manifest)
        self._enter(Phase.LOADING, f"loading version {version} as {runtime_name}")
        started = time.monotonic()
        runtime = load_runtime(runtime_name, fetched.path, manifest, config.max_batch_size)
        self.metrics.load_seconds.labels("load").set(time.monotonic() - started)
        self._enter(Phase.WARMING_UP, f"warming up batch sizes {list(runtime.batch_sizes)}")
        started = time.monotonic()
        single_call = warm_up(runtime)
        self.metrics.load_seconds.labels("warm_up").set(time.monotonic() - started)
        self.metrics.model_info.info(
            {
                "model": self.name,
                "version": str(version),
                "runtime": runtime.name,
                "source_model": manifest.model,
            }
        )
        # Everything loaded so far lives as long as the process: move it out of the collector's
        # sight, so a full collection never walks TensorFlow's hundreds of thousands of objects
        # in the middle of a request (a 100+ ms pause otherwise).
        gc.collect()
        gc.freeze()
        return Loaded(manifest, runtime, inline=single_call < INLINE_SECONDS, table=table)

    # -- predicting ---------------------------------------------------------------------------
    async def predict(self, inputs: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        loaded = self.loaded
        if loaded is None or self.phase not in (Phase.READY, Phase.DRAINING):
            raise NotReady(f"model not ready ({self.phase.value}: {self.reason})")
        if self._batcher is not None:
            return await self._batcher.submit(inputs)
        count = len(next(iter(inputs.values())))
        started = time.perf_counter()
        if loaded.inline:
            if count > INLINE_SLICE:
                outputs = await _predict_in_slices(loaded.runtime, inputs, count)
            else:
                outputs = loaded.runtime.predict(inputs)
        else:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, loaded.runtime.predict, inputs
            )
        self.metrics.observe_batch(count, time.perf_counter() - started)
        return outputs

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _predict_in_slices(
    runtime: Runtime, inputs: Mapping[str, npt.NDArray[Any]], count: int
) -> Arrays:
    parts: list[Arrays] = []
    for start in range(0, count, INLINE_SLICE):
        parts.append(
            runtime.predict({k: v[start : start + INLINE_SLICE] for k, v in inputs.items()})
        )
        await asyncio.sleep(0)  # one turn of the loop for everything else
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def warm_up(runtime: Runtime) -> float:
    """Run every batch size the server can form; returns the best single-instance call time."""
    best_single = float("inf")
    for size in runtime.batch_sizes:
        batch = {
            spec.name: np.zeros((size, *spec.instance_shape), dtype=spec.dtype)
            for spec in runtime.signature.inputs
        }
        for _ in range(WARM_UP_ROUNDS):
            started = time.perf_counter()
            runtime.predict(batch)
            if size == 1:
                best_single = min(best_single, time.perf_counter() - started)
    return best_single
