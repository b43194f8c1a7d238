"""Training jobs, sweep trials and scoring jobs as ``python -P -m training`` and ``python -P -m
training.score`` processes, run in the agent's state folder: at most ``parallel`` at once, oldest
first, logs in files, cancel = SIGTERM (both stop at the next batch and publish nothing, exit
143)."""

from __future__ import annotations

import asyncio
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
SCORE = "score"  # a JobRow's kind: python -m training.score, its data the keyed inputs


class JobRunner:
    def __init__(
        self,
        state: State,
        store: str,
        log_path: Callable[[str, str], Path],
        parallel: int,
        on_change: Callable[[], None],
        *,
        workdir: Path,
    ) -> None:
        self.state = state
        self.workdir = workdir  # the agent's own folder, never the one it was started from
        self.store = store
        self.log_path = log_path
        self.parallel = max(1, parallel)
        self.on_change = on_change
        self.running: dict[tuple[str, str], Child] = {}
        self._cancelled: set[tuple[str, str]] = set()
        # Every job being started or run, from the moment it leaves Pending: what the bound on
        # parallelism counts (its process may not exist yet).
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopping = False

    def recover(self) -> None:
        """A job that was running when the agent stopped died with it: run it again (a killed
        run published nothing, so nothing is duplicated)."""
        for job in self.state.jobs():
            if job.phase == RUNNING:
                self.state.set_job_phase(
                    job.namespace, job.name, PENDING, "requeued: agent restarted"
                )

    def start_pending(self) -> None:
        if self._stopping:
            return
        for job in self.state.jobs():
            if len(self._active) >= self.parallel:
                return
            if job.phase == PENDING and job.key not in self._active:
                self.state.set_job_phase(job.namespace, job.name, RUNNING, started=now())
                self._active[job.key] = asyncio.create_task(self._run(job))

    async def _run(self, job: JobRow) -> None:
        try:
            phase, reason = await self._train(job)
        except OSError as exc:  # the process could not start
            phase, reason = FAILED, f"cannot start python -m {_module(job)}: {exc}"
        finally:
            self._active.pop(job.key, None)
        if self._stopping:  # stopped with the agent: left Running, so it is requeued on start
            return
        if self.state.job(job.namespace, job.name) is not None:
            self.state.set_job_phase(job.namespace, job.name, phase, reason, finished=now())
        self.on_change()
        self.start_pending()

    async def _train(self, job: JobRow) -> tuple[str, str]:
        command = [
            sys.executable,
            "-P",  # the working folder never goes on sys.path
            "-m",
            _module(job),
            "--model",
            job.model,
            "--input" if job.kind == SCORE else "--data",
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
        child = await spawn(
            command, self.log_path(job.namespace, job.name), env=env, cwd=self.workdir
        )
        self.running[job.key] = child
        if job.key in self._cancelled:  # cancelled while it was being started
            child.signal(signal.SIGTERM)
        self.on_change()
        try:
            code = await child.wait()
        finally:
            self.running.pop(job.key, None)
        if job.key in self._cancelled:
            self._cancelled.discard(job.key)
            return FAILED, f"{CANCELLED}: stopped on request ({exit_reason(code)})"
        if code == 0:
            return SUCCEEDED, ""
        last = child.last_line()
        return FAILED, exit_reason(code) + (f": {last[-300:]}" if last else "")

    def cancel(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key in self._active:
            self._cancelled.add(key)
            child = self.running.get(key)
            if child is not None:
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
        self._stopping = True
        for child in list(self.running.values()):
            child.signal(signal.SIGTERM)
        tasks = list(self._active.values())
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=30)
            for task in late:
                task.cancel()


def _module(job: JobRow) -> str:
    return "training.score" if job.kind == SCORE else "training"
