"""The agent's private HTTP API (loopback only, versioned under ``/api/v1``); the console's
``local`` backend is its only client.

- ``GET  /api/v1/hello``: API version, pid, gateway URL, settings.
- ``GET  /api/v1/snapshot?after=G&wait=S``: everything the backend caches, once the state's
  generation passes ``G`` (a long poll; at most ``S`` seconds).
- ``POST /api/v1/actions/<verb>``: a mutation (JSON arguments) -> ActionResult(s).
- ``GET  /api/v1/logs?namespace=&pod=&pod=&follow=&tail=&since=&timestamps=&previous=``: text lines.
- ``POST /api/v1/shutdown``: stop the agent (its predictors drain and stop with it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console.local.logfiles import LogQuery, read_logs
from console.local.paths import API_VERSION
from console.local.wire import to_json

if TYPE_CHECKING:
    from console.local.agent import Agent

log = logging.getLogger(__name__)
PREFIX = f"/api/v{API_VERSION}"
MAX_WAIT = 30.0
# A live pod with no log yet is starting (or, for a job, queued): its log is waited for this
# long, or for as long as it is alive when the log is followed, before "no logs" is the answer.
LOG_FILE_WAIT_SECONDS = 10.0


def build_api(agent: Agent) -> web.Application:
    app = web.Application()
    app.router.add_get(f"{PREFIX}/hello", lambda r: _hello(agent, r))
    app.router.add_get(f"{PREFIX}/snapshot", lambda r: _snapshot(agent, r))
    app.router.add_post(f"{PREFIX}/actions/{{verb}}", lambda r: _action(agent, r))
    app.router.add_get(f"{PREFIX}/logs", lambda r: _logs(agent, r))
    app.router.add_post(f"{PREFIX}/shutdown", lambda r: _shutdown(agent, r))
    return app


async def _hello(agent: Agent, request: web.Request) -> web.Response:
    return web.json_response(agent.hello())


async def _snapshot(agent: Agent, request: web.Request) -> web.Response:
    after = int(request.query.get("after", "-1"))
    wait = min(float(request.query.get("wait", "0")), MAX_WAIT)
    await agent.wait_for_change(after, wait)
    return web.json_response(agent.snapshot())


async def _action(agent: Agent, request: web.Request) -> web.Response:
    verb = request.match_info["verb"]
    handler: Callable[..., Awaitable[Any]] | None = agent.action_handlers().get(verb)
    if handler is None:
        return web.json_response({"error": f"unknown action {verb!r}"}, status=404)
    try:
        arguments = await request.json()
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    try:
        result = await handler(**arguments)
    except TypeError as exc:  # arguments that do not fit the action
        return web.json_response({"error": f"{verb}: {exc}"}, status=400)
    except Exception as exc:  # a bug or a broken store: one line for the client, trace in the log
        log.exception("%s failed", verb)
        return web.json_response(
            {"error": f"{verb} failed: {type(exc).__name__}: {exc}"}, status=500
        )
    agent.changed()
    return web.json_response({"result": to_json(result)})


async def _logs(agent: Agent, request: web.Request) -> web.StreamResponse:
    query = request.query
    namespace = query.get("namespace", "default")
    pods = query.getall("pod", [])
    previous = query.get("previous") == "1"
    follow = query.get("follow") == "1" and not previous
    missing = await _missing_logs(agent, namespace, pods, previous, follow)
    if missing or not pods:
        which = "previous " if previous else ""
        return web.json_response(
            {"error": f"no {which}logs for {', '.join(missing) or 'no pod'} in {namespace}"},
            status=404,
        )
    log_query = LogQuery(
        files=[(p, agent.log_file(namespace, p, previous)) for p in pods],
        follow=follow,
        tail=int(query["tail"]) if "tail" in query else None,
        since=timedelta(seconds=float(query["since"])) if "since" in query else None,
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
