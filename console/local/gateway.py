"""The gateway: one port that routes ``/models/<name>/...`` (or ``/ns/<namespace>/models/
<name>/...`` when a name is in several namespaces) to a ready replica of the revision that
serves that deployment.

A request that cannot reach a replica (it just exited, or stopped listening after its drain)
is sent to another ready one, so a revision switch or a crashed replica does not fail clients.
The agent stops a replica only after it left the rotation and its in-flight requests are
answered.

The gateway is a proxy, not a client of its own: the request's headers go to the replica as the
client sent them (no Content-Type, Accept or User-Agent of aiohttp's) and the answer comes back
as the replica gave it. A body is read up to the predictors' own limit and no further: a bigger
one is answered 413 (as JSON, as a predictor would) before the rest of it is read, so clients
cannot make the agent hold more than the predictors would accept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp import HttpVersion11, hdrs, web
from multidict import CIMultiDict

from console.local.supervisor import Replica
from serving.config import parse_args as predictor_settings

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
        "expect",  # answered here (100 Continue or 413); the replica gets the whole body
    }
)
# aiohttp's client adds these when a request has none; a proxy must not invent them (a body
# without Content-Type became application/octet-stream, which predictors refuse with 415).
CLIENT_AUTO_HEADERS = (hdrs.CONTENT_TYPE, hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT)
ATTEMPTS = 3


SERVING_MAX_BODY_BYTES = 16 * 1024 * 1024  # serving/config.py's --max-body-bytes default


def predictors_max_body_bytes() -> int:
    """The body limit the agent's predictors run with: serving's default, or the
    ``FLEETDECK_MAX_BODY_BYTES`` they inherit from the agent's environment (read as they read
    it, by serving's own parser)."""
    try:
        return predictor_settings(["--model-uri", "unused"]).max_body_bytes
    except SystemExit:  # a FLEETDECK_* setting the predictors refuse too: they will not start
        return SERVING_MAX_BODY_BYTES


class Gateway:
    def __init__(
        self, lookup: Lookup, http: aiohttp.ClientSession, max_body_bytes: int | None = None
    ) -> None:
        self.lookup = lookup
        self.http = http
        self.max_body_bytes = max_body_bytes or predictors_max_body_bytes()
        self._turn = itertools.count()

    def app(self) -> web.Application:
        # The body is read by _read_body, bounded; aiohttp's own limit is the same one.
        app = web.Application(client_max_size=self.max_body_bytes)
        for path in ("/models/{name}/{tail:.*}", "/ns/{namespace}/models/{name}/{tail:.*}"):
            app.router.add_route("*", path, self.handle, expect_handler=self._expect)
        return app

    def _too_large(self) -> web.Response:
        return _error(
            413,
            f"request body larger than the predictors' limit of {self.max_body_bytes} bytes",
        )

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: a body declared too large is refused before it is sent."""
        if (request.content_length or 0) > self.max_body_bytes:
            return self._too_large()
        expect = request.headers.get(hdrs.EXPECT, "")
        if request.version != HttpVersion11:
            return None
        if expect.lower() != "100-continue":
            return _error(417, f"unknown Expect: {expect}")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own handler: the answer starts after it
        return None

    async def _read_body(self, request: web.Request) -> bytearray | None:
        """The whole body, or None as soon as it passes the limit (the rest is left unread;
        aiohttp discards it, or closes the connection, after the 413)."""
        if (request.content_length or 0) > self.max_body_bytes:
            return None
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > self.max_body_bytes:  # a chunked body: its size shows as it comes
                return None
        return body  # not copied into bytes: aiohttp sends a bytearray as it is

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        namespace = request.match_info.get("namespace")
        path = "/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        body = await self._read_body(request)
        if body is None:
            return self._too_large()
        # A list of pairs, not a dict: a header the client sent twice is forwarded twice.
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
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
                    request.method,
                    f"{replica.url}{path}",
                    headers=headers,
                    data=body,
                    skip_auto_headers=CLIENT_AUTO_HEADERS,
                    auto_decompress=False,  # the body goes back with its Content-Encoding
                ) as answer:
                    payload = await answer.read()
                    replica.answered += 1
                    kept = CIMultiDict(
                        (k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP
                    )
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
