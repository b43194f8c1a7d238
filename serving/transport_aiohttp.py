"""The predictor's default HTTP transport: aiohttp's own server (``--http-server aiohttp``).

aiohttp parses and frames every request (its llhttp-based C parser and its limits: request line
and each header field at most 8,190 bytes, at most 128 fields, one Host per HTTP/1.1 request;
anything else is 400 and the connection closes), keeps connections alive, bounds pipelining
(it stops reading while 32 requests wait) and stops a handler while its client does not read.
This module adds only what the predictor's handlers rely on and aiohttp's low-level server
leaves to an application:

- one handler for every path (``web.Server``, no application router: the handlers resolve their
  fixed paths themselves, see ``serving.routing``), no access log, orjson bodies built by the
  handlers, ``HttpRequest`` built over aiohttp's own header mapping (no copy);
- the body read before the handler runs, at most ``max_body_bytes`` (also aiohttp's
  ``client_max_size``): a declared length over it is answered (413 by the handlers) without
  reading a byte and the connection closes; ``Expect: 100-continue`` is answered only for a
  body that will be read; a body that stops arriving for ``keepalive_seconds`` is 408;
- a target that is not a path (absolute-form, ``*``, authority-form) is 400; a request asking
  for an Upgrade is answered and its connection closed, so nothing sent after it is read; after
  any 400 the connection closes (a client we could not make sense of may be out of step);
- parse errors answered as JSON ``{"error": ...}`` like every other error, and logged on one
  line at debug level (aiohttp logs a traceback for each);
- a client that half-closes after its requests still gets their answers (aiohttp closes at once);
- the drain and shutdown of ``serving.server``, as the httptools transport does them: every
  answer closes its connection while draining; at shutdown new handshakes are refused before
  the listener closes, idle connections close once their client has been quiet for a moment,
  in-flight requests finish within the grace period.

A client that sends a request head a byte at a time is cut by aiohttp's keep-alive timer, at
most ``keepalive_seconds`` after its connection opened or its last answer (aiohttp sends no 408).
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
import time

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from serving.exchange import (
    HANDSHAKE_SETTLE_SECONDS,
    INTERNAL_ERROR,
    MAX_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE_BYTES,
    QUIET_BEFORE_CLOSE_SECONDS,
    ErrorResponder,
    Handler,
    HttpRequest,
    HttpResponse,
    refuse_new_handshakes,
    unsafe_header,
)

log = logging.getLogger("serving.http")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# After answering a request whose body was not read (over the limit), what the client still
# sends of it is read and dropped this long before the connection closes: closing with unread
# data makes the kernel send a reset, which can destroy the answer before the client reads it.
LINGER_SECONDS = 2.0
# How often the shutdown looks for connections that have gone idle.
_SHUTDOWN_POLL_SECONDS = 0.05


class _Connection(RequestHandler):
    """aiohttp's connection handler, plus what the predictor needs of it: answers for a client
    that half-closed, JSON parse errors, and whether the connection is idle (for the shutdown).

    Reads aiohttp's private state (``_messages``, ``_waiter``, ``_request_in_progress``,
    ``_current_request``), which ``aiohttp>=3.14`` has; the integration tests cover each use.
    """

    __slots__ = ("error_response", "last_activity", "peer_closed", "refused")

    def __init__(
        self, manager: _Server, *, loop: asyncio.AbstractEventLoop, keepalive_seconds: float
    ) -> None:
        super().__init__(
            manager,
            loop=loop,
            keepalive_timeout=keepalive_seconds,
            access_log=None,  # type: ignore[arg-type]  # None turns it off (aiohttp checks)
            max_line_size=MAX_REQUEST_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADER_FIELDS,
            lingering_time=LINGER_SECONDS,
        )
        self.error_response = manager.error_response
        self.last_activity = time.monotonic()
        self.peer_closed = False  # the client half-closed: it sends nothing more
        self.refused = False  # a request could not be parsed: what follows is dropped

    def data_received(self, data: bytes) -> None:
        if self.refused:
            # aiohttp would feed it to its failed parser again, queueing one more 400 (and a
            # copy of the data) per read: a 5 MB URL took 15 MB. Dropped, as the stream is out
            # of sync; the connection closes after the 400.
            return
        self.last_activity = time.monotonic()
        super().data_received(data)
        messages = self._messages
        if messages and isinstance(messages[-1][0], _ErrInfo):
            self.refused = True

    def eof_received(self) -> bool:  # type: ignore[override]  # aiohttp's returns None
        """The client half-closed: answer what it sent, then close. Returning True keeps our
        side open for those answers (aiohttp's returns None: the transport closes at once)."""
        self.peer_closed = True
        request = self._current_request
        if request is not None and not request.content.is_eof():
            return False  # cut short in its body: it can never complete
        if self.idle:
            return False  # nothing owed
        if not self._messages:
            self.close()  # after the answer being made
        return True  # else the last request queued closes it (closes_after)

    @property
    def idle(self) -> bool:
        """Waiting for a request, none queued. (Between taking a request from the queue and
        answering it, aiohttp's loop waits on no future: not idle.)"""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._messages

    @property
    def closes_after(self) -> bool:
        """The request being answered is the last this connection will get."""
        return self.peer_closed and not self._messages

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (or a handler's crash), as JSON."""
        if status >= 500:
            log.error("internal error answering a request", exc_info=exc)
            message = INTERNAL_ERROR
        else:
            log.debug("refused a request with %d: %s", status, message or exc)
        text = message or (str(exc) if exc is not None else http.HTTPStatus(status).phrase)
        response = _web_response(self.error_response(status, text))
        response.force_close()
        # Said even when aiohttp would not (it reads an unparsable request as HTTP/1.0).
        response.headers["Connection"] = "close"
        return response


class _Server(web.Server):
    """aiohttp's low-level server with our connection handler."""

    def __init__(
        self, serve: AiohttpServer, *, keepalive_seconds: float, max_body_bytes: int
    ) -> None:
        super().__init__(serve._serve, request_factory=self._request, handler_cancellation=False)
        self.error_response = serve.error_response
        self.keepalive_seconds = keepalive_seconds
        self.max_body_bytes = max_body_bytes
        self.loop = asyncio.get_running_loop()

    def __call__(self) -> _Connection:
        return _Connection(self, loop=self.loop, keepalive_seconds=self.keepalive_seconds)

    def _request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message,
            payload,
            protocol,
            writer,
            task,
            self.loop,
            client_max_size=self.max_body_bytes,
        )


def _web_response(response: HttpResponse) -> web.Response:
    # Content-Type as a header: aiohttp's content_type argument refuses parameters such as
    # Prometheus's "text/plain; version=0.0.4; charset=utf-8".
    headers = {"Content-Type": response.content_type}
    if response.headers:
        headers.update(response.headers)
    return web.Response(body=response.body, status=response.status, headers=headers)


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AiohttpServer:
    """Serve ``handler`` on a TCP port with aiohttp; ``shutdown`` lets in-flight requests
    finish. A ``serving.exchange.HttpTransport``, as ``serving.http11.HttpServer`` is."""

    def __init__(
        self,
        handler: Handler,
        error_response: ErrorResponder,
        *,
        max_body_bytes: int,
        keepalive_seconds: float = 75.0,
    ) -> None:
        self.handler = handler
        self.error_response = error_response
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        # False while draining and shutting down: every answer says Connection: close, so
        # clients leave on their own instead of racing a close on an idle connection.
        self.keep_alive = True
        self._server: _Server | None = None
        self._runner: web.ServerRunner | None = None
        self._listener: socket.socket | None = None

    async def start(self, host: str, port: int, *, backlog: int = 2048) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = _Server(
            self, keepalive_seconds=self.keepalive_seconds, max_body_bytes=self.max_body_bytes
        )
        self._runner = web.ServerRunner(self._server, handle_signals=False)
        await self._runner.setup()
        # Our own listening socket: the shutdown filters its new handshakes (see
        # serving.exchange.refuse_new_handshakes) before it closes.
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family, backlog=backlog)
        listener.setblocking(False)
        self._listener = listener
        await web.SockSite(self._runner, listener, backlog=backlog).start()
        return int(listener.getsockname()[1])

    def stop_keep_alive(self) -> None:
        """From now on every answer closes its connection (the drain before a shutdown)."""
        self.keep_alive = False

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop accepting, close idle connections once their clients have been quiet, let
        in-flight requests finish (up to the grace period), then close what is left.

        No request is reset: new handshakes are refused first (the client's connect fails, so
        it never sent anything), the ones under way are accepted and served before the listener
        closes, requests received are answered with Connection: close, and idle connections are
        closed only after their client has been quiet a moment.
        """
        self.keep_alive = False
        server, runner = self._server, self._runner
        if server is None or runner is None:
            return
        if self._listener is not None and refuse_new_handshakes([self._listener]):
            await asyncio.sleep(HANDSHAKE_SETTLE_SECONDS)
        for site in list(runner.sites):
            await site.stop()  # closes the listener
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while server.connections and loop.time() < deadline:
            now = time.monotonic()
            for connection in server.connections:
                if (
                    isinstance(connection, _Connection)
                    and connection.idle
                    and now - connection.last_activity >= QUIET_BEFORE_CLOSE_SECONDS
                ):
                    connection.force_close()
            await asyncio.sleep(_SHUTDOWN_POLL_SECONDS)
        # What is left has run out of time: aiohttp cancels and closes it. (Not 0: aiohttp
        # reads a timeout of 0 as none, and would wait for it.)
        await server.shutdown(_SHUTDOWN_POLL_SECONDS)
        await runner.cleanup()

    # -- the one handler aiohttp calls --------------------------------------------------------
    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        close = not self.keep_alive
        headers = request.headers
        try:
            if not request.raw_path.startswith("/"):
                # absolute-form (http://host/path) is for proxies, authority- and asterisk-form
                # for CONNECT and OPTIONS: none names one of our paths, and a second host next
                # to Host is a confusion we do not need.
                raise _Refusal(400, "the request target must be a path starting with /")
            exchange = HttpRequest(request.method, request.path, request.query_string, headers)
            if request.body_exists:
                await self._read_body(request, exchange)
                close = close or exchange.body_exceeded
        except _Refusal as refusal:
            response = _web_response(self.error_response(refusal.status, refusal.message))
            response.force_close()
            return response
        answer = self.handler(exchange)
        if not isinstance(answer, HttpResponse):
            answer = await answer
        if answer.headers:
            answer = self._checked(answer)
        response = _web_response(answer)
        protocol = request.protocol
        if (
            close
            # A request we could not make sense of: its client may be out of step with the
            # stream too (aiohttp reads past what llhttp tolerates, e.g. a 100 KB chunk
            # extension), so nothing more is read from it.
            or answer.status == 400
            or "upgrade" in headers  # nothing sent after it is read (it may be another protocol)
            or (isinstance(protocol, _Connection) and protocol.closes_after)
        ):
            response.force_close()
        return response

    async def _read_body(self, request: web.BaseRequest, exchange: HttpRequest) -> None:
        """Read the body into ``exchange``, or mark it over the limit without reading it."""
        length = exchange.content_length
        limit = self.max_body_bytes
        if length is not None and length > limit:
            exchange.body_exceeded = True  # answered 413 by the handlers; never read
            return
        content = request.content
        if content.is_eof():  # all of it arrived with the head: the common, small request
            body = content.read_nowait(-1)
            if len(body) > limit:  # chunked, no length given
                exchange.body_exceeded = True
            else:
                exchange.body = body
            return
        expect = exchange.headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise _Refusal(417, f"unknown expectation: {expect}")
            await request.writer.write(CONTINUE)
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.keepalive_seconds) as deadline:
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:  # chunked, no length given
                        exchange.body_exceeded = True
                        return
                    chunks.append(chunk)
                    deadline.reschedule(loop.time() + self.keepalive_seconds)
        except TimeoutError:
            raise _Refusal(408, "the request body stopped arriving") from None
        except web.HTTPException as exc:  # aiohttp's own refusals of the body
            raise _Refusal(exc.status, exc.reason) from None
        except (RequestPayloadError, ValueError, ConnectionError) as exc:  # malformed, or cut
            raise _Refusal(400, f"malformed request body: {exc}") from None
        exchange.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _checked(self, response: HttpResponse) -> HttpResponse:
        """``response``, or a 500 when one of its headers could inject another."""
        assert response.headers is not None
        for name, value in response.headers.items():
            problem = unsafe_header(name, value)
            if problem is not None:
                log.error("cannot send the answer (status %d): %s", response.status, problem)
                return self.error_response(500, INTERNAL_ERROR)
        return response
