"""Predictor processes: one ``python -P -m serving`` per replica, on a free port, health-checked
through its readiness probe, restarted with backoff when it exits, stopped with a drain.

A replica is what a pod is on Kubernetes: it keeps its name across restarts, counts them, and
remembers why the last process ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from console.local.process import Child, exit_reason, spawn

log = logging.getLogger(__name__)

LISTENING = re.compile(r"listening on http://[^:\s]+:(\d+)")
PROBE_SECONDS = 0.25  # until ready: a rollout switches as soon as the new revision is
PROBE_READY_SECONDS = 1.0  # once ready: a crash is seen at once anyway (the process exits)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
STABLE_SECONDS = 30.0  # ready this long: the next crash starts the backoff from the beginning
STOP_GRACE = 30.0


@dataclass(frozen=True)
class PredictorSpec:
    """What one revision's replicas run."""

    model_uri: str  # <store>/<model>/<version>
    served_name: str  # the deployment's name: routes ask /v2/models/<name>
    drain_seconds: float
    max_batch_size: int
    batch_timeout_ms: float
    cache_dir: Path

    @property
    def workdir(self) -> Path:
        """Where the predictor runs: the agent's own state folder (the cache's parent)."""
        return self.cache_dir.parent

    def command(self) -> list[str]:
        # -P: the working folder never goes on sys.path, so no `serving/` there is imported.
        return [
            sys.executable,
            "-P",
            "-m",
            "serving",
            "--model-uri",
            self.model_uri,
            "--model-name",
            self.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--drain-seconds",
            str(self.drain_seconds),
            "--max-batch-size",
            str(self.max_batch_size),
            "--batch-timeout-ms",
            str(self.batch_timeout_ms),
            "--cache-dir",
            str(self.cache_dir),
        ]


class Replica:
    def __init__(
        self,
        pod: str,
        revision: int,
        spec: PredictorSpec,
        log_path: Path,
        http: aiohttp.ClientSession,
        on_change: Callable[[], None],
        on_exit: Callable[[Replica], None] | None = None,
    ) -> None:
        self.pod = pod
        self.on_exit = on_exit
        self.revision = revision
        self.spec = spec
        self.log_path = log_path
        self.http = http
        self.on_change = on_change
        self.created = datetime.now(UTC)
        self.port: int | None = None
        self.ready = False
        self.ever_ready = False
        self.restarts = 0
        self.last_exit = ""  # why the previous process ended ("" before any restart)
        self.failure = ""  # the predictor's own reason when it says it will never be ready
        self.stopping = False
        self.inflight = 0  # requests the gateway has sent and not yet had answered
        self.answered = 0  # requests the gateway had answered by it (the autoscaler's counter)
        self.child: Child | None = None
        self._wake = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"replica-{pod}")

    # -- what the API shows -----------------------------------------------------------------
    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def routable(self) -> bool:
        return self.ready and not self.stopping and self.port is not None

    @property
    def phase(self) -> str:
        if self.child is None or self.child.process.returncode is not None:
            return "Pending" if not self.restarts else "Waiting"
        return "Running"

    @property
    def reason(self) -> str:
        if self.stopping:
            return "Terminating"
        if self.failure:
            return self.failure
        if self.child is None or self.child.process.returncode is not None:
            return f"CrashLoopBackOff: {self.last_exit}" if self.restarts else ""
        return f"restarted; last exit: {self.last_exit}" if self.last_exit else ""

    # -- lifecycle --------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self.stopping:
            if self.restarts and self.log_path.exists():  # `logs --previous` reads this
                self.log_path.replace(self.log_path.with_suffix(".previous.log"))
            try:
                self.child = await spawn(
                    self.spec.command(), self.log_path, cwd=self.spec.workdir, on_line=self._line
                )
            except OSError as exc:  # cannot even start (no Python, no memory): say so and retry
                self.restarts += 1
                self.last_exit = f"cannot start the predictor: {exc}"
                self.on_change()
                await self._backoff(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.on_change()
            started = asyncio.get_running_loop().time()
            probing = asyncio.create_task(self._probe(self.child))
            code = await self.child.wait()
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
            self.ready, self.port = False, None
            if self._stopped():
                break
            self.restarts += 1
            last = self.child.last_line()
            self.last_exit = exit_reason(code) + (f" ({last[-200:]})" if last else "")
            log.warning("%s: predictor %s; restarting in %.1f s", self.pod, self.last_exit, backoff)
            if self.on_exit is not None:
                self.on_exit(self)
            self.on_change()
            if asyncio.get_running_loop().time() - started > STABLE_SECONDS:
                backoff = BACKOFF_FIRST
            await self._backoff(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        self.on_change()

    async def _backoff(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _stopped(self) -> bool:
        return self.stopping  # read again: stop() sets it while this task waits

    def _line(self, line: str) -> None:
        found = LISTENING.search(line)
        if found and self.port is None:
            self.port = int(found.group(1))

    async def _probe(self, child: Child) -> None:
        timeout = aiohttp.ClientTimeout(total=2)
        while child.process.returncode is None:
            await asyncio.sleep(PROBE_READY_SECONDS if self.ready else PROBE_SECONDS)
            if self.port is None:
                continue
            ready, failure = False, ""
            try:
                async with self.http.get(
                    f"{self.url}/v2/health/ready", timeout=timeout
                ) as response:
                    body = await response.json(content_type=None)
                    ready = response.status == 200
                    if isinstance(body, dict) and body.get("phase") == "failed":
                        failure = str(body.get("reason", "failed"))
            except (aiohttp.ClientError, TimeoutError, ValueError):
                ready = False
            if self.stopping:
                ready = False
            if (ready, failure) != (self.ready, self.failure):
                self.ready, self.failure = ready, failure
                self.ever_ready = self.ever_ready or ready
                self.on_change()

    async def stop(self) -> None:
        """Take it out of rotation, SIGTERM (the predictor drains), SIGKILL if it hangs."""
        self.stopping = True
        self.ready = False
        self._wake.set()
        child = self.child
        if child is not None and child.process.returncode is None:
            child.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), self.spec.drain_seconds + STOP_GRACE)
            except TimeoutError:
                child.signal(signal.SIGKILL)
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
