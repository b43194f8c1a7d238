"""The local agent: one process per profile that owns the desired state (SQLite), the
predictor and training processes, the gateway port and the private API.

It holds an exclusive lock in the profile's state folder for its whole life (a second agent
refuses to start). Under that lock it closes the folder to other users, replaces a socket a
killed agent left, listens on its API socket and the gateway port, then writes ``agent.json``;
and it reconciles: every deployment in the state gets its processes again, jobs that were
running are requeued.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from console.autoscaling import SYNC_SECONDS
from console.local.actions import Actions
from console.local.api import build_api
from console.local.autoscaler import Autoscalers
from console.local.fleet import Fleet, FleetSettings
from console.local.gateway import Gateway
from console.local.jobs import PENDING, RUNNING, JobRunner
from console.local.paths import API_VERSION, AgentPaths
from console.local.state import JobRow, State, parse_time
from console.local.wire import to_json
from console.model import JobPhase, TrainingJob
from console.names import is_label

log = logging.getLogger("fleetdeck.agent")

TICK_SECONDS = 0.5


class AgentError(Exception):
    """The agent cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class AgentSettings:
    profile: str
    paths: AgentPaths
    gateway_port: int
    fleet: FleetSettings
    training_parallel: int
    # How often the autoscalers are evaluated: the HPA's --horizontal-pod-autoscaler-sync-period.
    autoscale_sync_seconds: float = SYNC_SECONDS


def _job_view(job: JobRow) -> TrainingJob:
    return TrainingJob(
        name=job.name,
        namespace=job.namespace,
        model=job.model,
        phase=JobPhase(job.phase),
        gpus=job.gpus,
        node="localhost" if job.phase != PENDING else "",
        pending_reason=job.reason,
        started=parse_time(job.started),
        finished=parse_time(job.finished),
        sweep=job.sweep,
        trial=job.trial,
        kind=job.kind,
    )


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.paths = settings.paths
        self.generation = 0
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._stop = asyncio.Event()
        self.gateway_url = ""

    # -- change notification ----------------------------------------------------------------
    def changed(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()
        self._kick.set()

    async def wait_for_change(self, after: int, wait: float) -> None:
        """Return on the next change, after ``wait`` seconds, or when the agent stops: a
        waiting client must not hold the agent's shutdown for the rest of its long poll."""
        if self.generation > after or wait <= 0 or self._stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(self._changed, self._stop), wait)

    def request_stop(self) -> None:
        self._stop.set()

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> None:
        self.paths.make_private()
        lock = _take_lock(self.paths.lock)
        try:
            self.paths.tighten_all()  # an older agent left 0755 folders and 0644 files
            await self._serve()
        finally:
            for left in (self.paths.agent_file, self.paths.socket):
                left.unlink(missing_ok=True)
            os.close(lock)

    async def _serve(self) -> None:
        self.state = State(self.paths.database)
        connector = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
        self.http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
        )
        self.fleet = Fleet(self.state, self.settings.fleet, self.paths, self.http, self.changed)
        self.jobs = JobRunner(
            self.state,
            self.settings.fleet.store,
            lambda ns, name: self.paths.pod_log(ns, name),
            self.settings.training_parallel,
            self.changed,
            workdir=self.paths.root,
        )
        self.autoscalers = Autoscalers(self.state, self.fleet, self.changed)
        self.actions = Actions(self.state, self.fleet, self.jobs, self.settings.fleet.store)
        gateway = web.AppRunner(Gateway(self.fleet.routes, self.http).app(), access_log=None)
        api = web.AppRunner(build_api(self), access_log=None)
        await gateway.setup()
        await api.setup()
        try:
            gateway_site = web.TCPSite(gateway, "127.0.0.1", self.settings.gateway_port)
            try:
                await gateway_site.start()
            except OSError as exc:
                raise AgentError(
                    f"gateway port {self.settings.gateway_port} is taken ({exc.strerror}); "
                    "free it or set [local] gateway_port in the profile"
                ) from None
            await web.SockSite(api, _listen(self.paths.socket)).start()
            self.gateway_url = f"http://127.0.0.1:{_port(gateway_site)}"
            self.jobs.recover()
            self._write_agent_file()
            log.info(
                "agent for profile %s: API on %s, gateway %s",
                self.settings.profile,
                self.paths.socket,
                self.gateway_url,
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop)
            autoscaling = asyncio.create_task(self._autoscale(), name="autoscalers")
            try:
                await self._loop()
            finally:
                autoscaling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await autoscaling
        finally:
            self.paths.agent_file.unlink(missing_ok=True)
            log.info("stopping: draining predictors and ending training runs")
            await self.fleet.stop()
            await self.jobs.stop()
            await api.cleanup()
            await gateway.cleanup()
            await self.http.close()
            self.state.close()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            try:
                self.fleet.reconcile()
                self.jobs.start_pending()
            except Exception:  # one bad row must not stop the agent; say so in its log
                log.exception("reconcile failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(self._kick, self._stop), TICK_SECONDS)

    async def _autoscale(self) -> None:
        """The autoscalers' sync loop: each evaluated once a period (console.local.autoscaler)."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.autoscale_sync_seconds)
            if self._stop.is_set():
                return
            try:
                self.autoscalers.evaluate_all()
            except Exception:  # the next period tries again; say so in the log
                log.exception("autoscaling failed")

    def _write_agent_file(self) -> None:
        temporary = self.paths.agent_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.hello()))
        temporary.replace(self.paths.agent_file)

    # -- what the API serves ----------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        fleet = self.settings.fleet
        return {
            "api": API_VERSION,
            "pid": os.getpid(),
            "profile": self.settings.profile,
            "socket": str(self.paths.socket),
            "gateway_url": self.gateway_url,
            "store": fleet.store,
            "state": str(self.paths.root),
        }

    def snapshot(self) -> dict[str, Any]:
        deployments, revisions, pods, events, endpoints = [], {}, {}, {}, {}
        for row in self.state.deployments():
            key = f"{row.namespace}/{row.name}"
            deployments.append(self.fleet.view(row))
            revisions[key] = self.fleet.history(row)
            pods[key] = self.fleet.pods(row.key)
            events[key] = list(self.fleet.events.get(row.key, ()))
            endpoints[key] = [
                [r.pod, r.url] for r in self.fleet.replicas(row.key) if r.url and not r.stopping
            ]
        jobs = self.state.jobs()
        return {
            "generation": self.generation,
            "deployments": to_json(deployments),
            "revisions": to_json(revisions),
            "pods": to_json(pods),
            "events": to_json(events),
            "endpoints": endpoints,
            "jobs": to_json([_job_view(j) for j in jobs]),
            "job_pods": {
                f"{j.namespace}/{j.name}": [j.name]
                for j in jobs
                # A row from before names were checked has no log a name could reach.
                if is_label(j.namespace)
                and is_label(j.name)
                and self.paths.pod_log(j.namespace, j.name).exists()
            },
        }

    def log_file(self, namespace: str, pod: str, previous: bool) -> Path:
        return self.paths.pod_log(namespace, pod, previous)

    def pod_alive(self, namespace: str, pod: str) -> bool:
        job = self.state.job(namespace, pod)
        if job is not None:
            return job.phase in (PENDING, RUNNING)
        # A stopping predictor still writes its drain lines: alive until its process exits
        # (as `kubectl logs -f` follows a container until it exits).
        return any(
            r.pod == pod
            and (not r.stopping or (r.child is not None and r.child.process.returncode is None))
            for key in self.fleet.sets
            if key[0] == namespace
            for r in self.fleet.replicas(key)
        )

    def action_handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        a = self.actions
        return {
            "deploy": a.deploy,
            "rollout": a.rollout,
            "rollback": a.rollback,
            "scale": a.scale,
            "autoscale": a.autoscale,
            "restart": a.restart,
            "pause": lambda **kw: a.set_paused(paused=True, **kw),
            "resume": lambda **kw: a.set_paused(paused=False, **kw),
            "delete": a.delete,
            "train": a.train,
            "score": a.score,
            "cancel_job": a.cancel_job,
        }


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _port(site: web.TCPSite) -> int:
    server: Any = site._server  # aiohttp keeps the asyncio server here; read for port 0
    return int(server.sockets[0].getsockname()[1])


def _listen(path: Path) -> socket.socket:
    """The API's socket at ``path``, which the caller's lock makes ours to replace (a killed
    agent leaves its socket behind). Bound through the folder's descriptor: a socket's path is
    at most 107 bytes, a state folder's may be longer. The umask (0077) makes it 0600."""
    path.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(f"/proc/self/fd/{folder}/{path.name}")
        os.chmod(path, 0o600)
        listening.listen(128)
    except BaseException:
        listening.close()
        raise
    finally:
        os.close(folder)
    return listening


def _take_lock(path: Path) -> int:
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise AgentError(
            f"another agent already runs for this profile (lock {path} is held); "
            "see `fleetdeck agent status`"
        ) from None
    return handle
