"""The gateway: one port that routes ``/models/<name>/...`` (or ``/ns/<namespace>/models/
<name>/...`` when a name is in several namespaces) to a ready replica of the revision that
serves that deployment.

A request that cannot reach a replica (it just exited, or stopped listening after its drain)
is sent to another ready one, so a revision switch or a crashed replica does not fail clients.
The agent stops a replica only after it left the rotation and its in-flight requests are
answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp import web

from console.local.supervisor import Replica

# Lookup: (namespace or None, name) -> (replicas of the serving revision, or an error message).
Lookup = Callable[[str | None, str], tuple[Sequence[Replica], str]]
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
ATTEMPTS = 3


class Gateway:
    def __init__(self, lookup: Lookup, http: aiohttp.ClientSession) -> None:
        self.lookup = lookup
        self.http = http
        self._turn = itertools.count()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/models/{name}/{tail:.*}", self.handle)
        app.router.add_route("*", "/ns/{namespace}/models/{name}/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        namespace = request.match_info.get("namespace")
        path = "/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        tried: set[str] = set()
        last_error = ""
        for _attempt in range(ATTEMPTS):
            replicas, error = self.lookup(namespace, name)
            if error:
                return _error(404 if "no deployment" in error else 409, error)
            ready = [r for r in replicas if r.routable and r.pod not in tried]
            if not ready:
                break
            replica = min(ready, key=lambda r: (r.inflight, next(self._turn) % len(ready)))
            replica.inflight += 1
            try:
                async with self.http.request(
                    request.method, f"{replica.url}{path}", headers=headers, data=body
                ) as answer:
                    payload = await answer.read()
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except aiohttp.ClientConnectionError as exc:  # it went away: try another replica
                tried.add(replica.pod)
                last_error = f"{replica.pod}: {exc}"
            finally:
                replica.inflight -= 1
        why = f" (last: {last_error})" if last_error else ""
        return _error(503, f"no ready replica of {name!r}{why}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
