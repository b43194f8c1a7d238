"""Training jobs and sweep trials as ``python -m training`` processes: at most ``parallel`` at
once, oldest first, logs in files, cancel = SIGTERM (training stops at the next batch and
publishes nothing, exit 143)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from console.local.process import Child, exit_reason, spawn
from console.local.state import JobRow, State, now

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
CANCELLED = "Cancelled"


class JobRunner:
    def __init__(
        self,
        state: State,
        store: str,
        log_path: Callable[[str, str], Path],
        parallel: int,
        on_change: Callable[[], None],
    ) -> None:
        self.state = state
        self.store = store
        self.log_path = log_path
        self.parallel = max(1, parallel)
        self.on_change = on_change
        self.running: dict[tuple[str, str], Child] = {}
        self._cancelled: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def recover(self) -> None:
        """A job that was running when the agent stopped died with it: run it again (a killed
        run published nothing, so nothing is duplicated)."""
        for job in self.state.jobs():
            if job.phase == RUNNING:
                self.state.set_job_phase(
                    job.namespace, job.name, PENDING, "requeued: agent restarted"
                )

    def start_pending(self) -> None:
        for job in self.state.jobs():
            if len(self.running) >= self.parallel:
                return
            if job.phase == PENDING and job.key not in self.running:
                self._start(job)

    def _start(self, job: JobRow) -> None:
        self.state.set_job_phase(job.namespace, job.name, RUNNING, started=now())
        placeholder: asyncio.Task[None] = asyncio.create_task(self._run(job))
        self._tasks.add(placeholder)
        placeholder.add_done_callback(self._tasks.discard)

    async def _run(self, job: JobRow) -> None:
        command = [
            sys.executable,
            "-m",
            "training",
            "--model",
            job.model,
            "--data",
            job.data,
            "--store",
            self.store,
            "--run-id",
            job.name,
            *job.args,
        ]
        if job.sweep:
            command += ["--sweep", job.sweep, "--trial", str(job.trial or 0)]
        # TensorFlow's C++ start-up chatter would bury the epoch lines a person follows.
        env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
        child = await spawn(command, self.log_path(job.namespace, job.name), env=env)
        self.running[job.key] = child
        self.on_change()
        code = await child.wait()
        del self.running[job.key]
        if job.key in self._cancelled:
            self._cancelled.discard(job.key)
            phase, reason = FAILED, f"{CANCELLED}: stopped on request ({exit_reason(code)})"
        elif code == 0:
            phase, reason = SUCCEEDED, ""
        else:
            last = child.last_line()
            phase, reason = FAILED, exit_reason(code) + (f": {last[-300:]}" if last else "")
        if self.state.job(job.namespace, job.name) is not None:
            self.state.set_job_phase(job.namespace, job.name, phase, reason, finished=now())
        self.on_change()
        self.start_pending()

    def cancel(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        child = self.running.get(key)
        if child is not None:
            self._cancelled.add(key)
            child.signal(signal.SIGTERM)
            return
        job = self.state.job(namespace, name)
        if job is not None and job.phase == PENDING:
            self.state.set_job_phase(
                namespace, name, FAILED, f"{CANCELLED} before it started", finished=now()
            )
        self.on_change()

    async def stop(self) -> None:
        """The agent is stopping: end running trainings (they publish nothing); they are
        requeued when the agent starts again."""
        for child in list(self.running.values()):
            child.signal(signal.SIGTERM)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for child in list(self.running.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(child.process.wait(), 30)
