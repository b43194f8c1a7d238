"""The agent's private HTTP API, on a Unix socket in the profile's 0700 state folder and served
to the agent's own user only (versioned under ``/api/v1``); ``console.local.client`` is how the
console reaches it.

- ``GET  /api/v1/hello``: API version, pid, socket, gateway URL, settings.
- ``GET  /api/v1/snapshot?after=G&wait=S``: everything the backend caches, once the state's
  generation passes ``G`` (a long poll; at most ``S`` seconds).
- ``POST /api/v1/actions/<verb>``: a mutation (a JSON object of arguments) -> ActionResult(s).
- ``GET  /api/v1/autoscaler?namespace=&name=``: ``{"autoscaler": AutoscalerInfo or null}``.
- ``GET  /api/v1/logs?namespace=&pod=&pod=&follow=&tail=&since=&timestamps=&previous=``: text lines.
- ``POST /api/v1/shutdown``: stop the agent (its predictors drain and stop with it).

Every request is checked before it is served (:func:`_guard`): the peer's uid (the kernel's
word), no ``Origin`` (a web page), a POST only as ``application/json``. Bad parameters are 400s
that say what is expected.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console.local.errors import BadArgument
from console.local.logfiles import LogQuery, read_logs
from console.local.paths import API_VERSION
from console.local.peer import PeerCredentials, peer_credentials
from console.local.wire import to_json
from console.names import InvalidName, check_label, check_subdomain

if TYPE_CHECKING:
    from console.local.agent import Agent

log = logging.getLogger(__name__)
PREFIX = f"/api/v{API_VERSION}"
MAX_WAIT = 30.0
# A live pod with no log yet is starting (or, for a job, queued): its log is waited for this
# long, or for as long as it is alive when the log is followed, before "no logs" is the answer.
LOG_FILE_WAIT_SECONDS = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_api(agent: Agent) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app.router.add_get(f"{PREFIX}/hello", lambda r: _hello(agent, r))
    app.router.add_get(f"{PREFIX}/snapshot", lambda r: _snapshot(agent, r))
    app.router.add_post(f"{PREFIX}/actions/{{verb}}", lambda r: _action(agent, r))
    app.router.add_get(f"{PREFIX}/logs", lambda r: _logs(agent, r))
    app.router.add_get(f"{PREFIX}/autoscaler", lambda r: _autoscaler(agent, r))
    app.router.add_post(f"{PREFIX}/shutdown", lambda r: _shutdown(agent, r))
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _peer(request: web.Request) -> PeerCredentials | None:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return peer_credentials(sock) if sock is not None else None


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    peer = _peer(request)
    owner = os.geteuid()
    if peer is None or peer.uid != owner:
        who = f"uid {peer.uid} (pid {peer.pid})" if peer else "an unknown peer"
        log.warning(
            "refused %s %s from %s: not the agent's owner", request.method, request.path, who
        )
        response = _error(
            403, f"this agent serves only its owner (uid {owner}); you are {who}: refused"
        )
        response.force_close()
        return response
    if "Origin" in request.headers:  # a web page's request (a browser always sends Origin)
        log.warning(
            "refused %s %s: Origin %s", request.method, request.path, request.headers["Origin"]
        )
        return _error(403, "requests from web pages (an Origin header) are refused")
    if request.method == "POST" and request.content_type != "application/json":
        return _error(415, f"send the body as application/json, not {request.content_type!r}")
    try:
        return await handler(request)
    except (InvalidName, BadArgument) as exc:  # the client's fault, said in its words
        return _error(400, str(exc))


def _number(request: web.Request, name: str, expected: str, *, integer: bool) -> float | None:
    """Query parameter ``name`` as a finite number >= 0 (an integer when asked); None when
    absent; :class:`BadArgument` saying what is expected otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = -1
    if not math.isfinite(value) or value < 0:
        raise BadArgument(f"{name}={raw!r}: expected {expected}")
    return value


async def _hello(agent: Agent, request: web.Request) -> web.Response:
    return web.json_response(agent.hello())


async def _snapshot(agent: Agent, request: web.Request) -> web.Response:
    after = _number(request, "after", "a generation: an integer >= 0", integer=True)
    wait = _number(request, "wait", "seconds to wait: a number >= 0", integer=False)
    await agent.wait_for_change(int(after) if after is not None else -1, min(wait or 0.0, MAX_WAIT))
    return web.json_response(agent.snapshot())


async def _action(agent: Agent, request: web.Request) -> web.Response:
    verb = request.match_info["verb"]
    handler: Callable[..., Awaitable[Any]] | None = agent.action_handlers().get(verb)
    if handler is None:
        return _error(404, f"unknown action {verb!r}")
    try:
        arguments = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(arguments, dict):
        return _error(400, f"the body must be a JSON object of {verb}'s arguments")
    if not arguments.get("user") and "user" in inspect.signature(handler).parameters:
        # Only the owner reaches this API (the peer check): the change is theirs.
        peer = _peer(request)
        arguments["user"] = peer.user if peer is not None else "unknown"
    try:
        result = await handler(**arguments)
    except (InvalidName, BadArgument, TypeError) as exc:  # arguments that do not fit
        return _error(400, f"{verb}: {exc}")
    except Exception as exc:  # a bug or a broken store: one line for the client, trace in the log
        log.exception("%s failed", verb)
        return _error(500, f"{verb} failed: {type(exc).__name__}: {exc}")
    agent.changed()
    return web.json_response({"result": to_json(result)})


async def _autoscaler(agent: Agent, request: web.Request) -> web.Response:
    namespace = check_label(request.query.get("namespace", "default"), "namespace")
    name = check_label(request.query.get("name"), "deployment name")
    info = agent.autoscalers.info(namespace, name)
    return web.json_response({"autoscaler": to_json(info) if info is not None else None})


async def _logs(agent: Agent, request: web.Request) -> web.StreamResponse:
    query = request.query
    namespace = check_label(query.get("namespace", "default"), "namespace")
    pods = [check_subdomain(pod, "pod name") for pod in query.getall("pod", [])]
    tail = _number(request, "tail", "a number of lines: an integer >= 0", integer=True)
    since = _number(request, "since", "seconds: a number >= 0", integer=False)
    previous = query.get("previous") == "1"
    follow = query.get("follow") == "1" and not previous
    missing = await _missing_logs(agent, namespace, pods, previous, follow)
    if missing or not pods:
        which = "previous " if previous else ""
        return _error(404, f"no {which}logs for {', '.join(missing) or 'no pod'} in {namespace}")
    log_query = LogQuery(
        files=[(p, agent.log_file(namespace, p, previous)) for p in pods],
        follow=follow,
        tail=int(tail) if tail is not None else None,
        since=timedelta(seconds=since) if since is not None else None,
        timestamps=query.get("timestamps") == "1",
    )
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    try:
        async for line in read_logs(log_query, lambda pod: agent.pod_alive(namespace, pod)):
            await response.write((line + "\n").encode("utf-8"))
    except (ConnectionResetError, RuntimeError):  # the reader went away
        return response
    await response.write_eof()
    return response


async def _missing_logs(
    agent: Agent, namespace: str, pods: list[str], previous: bool, follow: bool
) -> list[str]:
    """The pods without a log file, after waiting for the live ones to write theirs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOG_FILE_WAIT_SECONDS
    while True:
        missing = [p for p in pods if not agent.log_file(namespace, p, previous).exists()]
        alive = not previous and all(agent.pod_alive(namespace, p) for p in missing)
        if not missing or not alive or (not follow and loop.time() >= deadline):
            return missing
        await asyncio.sleep(0.1)


async def _shutdown(agent: Agent, request: web.Request) -> web.Response:
    agent.request_stop()
    return web.json_response({"stopping": True})
