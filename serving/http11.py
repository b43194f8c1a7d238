"""The predictor's HTTP/1.1 server: an asyncio protocol over httptools (llhttp).

Why not aiohttp's server: on the LiteRT path the whole prediction (parse, validate, invoke,
encode) costs less than aiohttp's own per-request machinery (request and stream objects, a task
per request, the payload reader). Measured here at c=16 on one core: aiohttp answering a constant
JSON body serves ~20–23k req/s; a minimal aiohttp predictor ~11k; the same predictor on this
protocol ~34k (bench/README.md). The API is a dozen fixed JSON endpoints, so the server needs
only what they use: keep-alive, pipelining in order, Content-Length and chunked bodies, a body
limit enforced before the body is read, ``Expect: 100-continue``, idle timeouts, and a graceful
shutdown that finishes in-flight requests.

Hostile and careless clients: a client that half-closes after its request still gets its answer;
a connection is closed by sending FIN after the last answer and then reading (and discarding)
what the client still sends for a while, so a request crossing the close never turns into a
reset that would also destroy the answers before it; HTTP/1.1 requests need exactly one Host.

Requests parsed in one turn of the event loop are answered together at its end, and their
answers sent after the last is made: the kernel's socket code then runs between batches of
requests rather than between every two, which keeps the predictor's code in the CPU caches (see
``HttpServer.answer_soon``). A handler may answer synchronously, or with a coroutine that is run
inline until it first waits (the LiteRT path never does: no task is created), or with any other
awaitable (the micro-batching path); answers on one connection keep the requests' order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import http
import logging
import os
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import CoroutineType
from typing import Any, cast
from urllib.parse import unquote

import httptools

log = logging.getLogger("serving.http")

IDLE_SWEEP_SECONDS = 5.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
INTERNAL_ERROR = "internal error; see the predictor's log"
MAX_PIPELINED = 16  # queued requests per connection before reading pauses
# After the last answer and our FIN, what the client still sends is read and dropped this long:
# closing a socket with unread data makes the kernel send a reset, and a reset can destroy
# answers the client has not read yet.
LINGER_SECONDS = 2.0
# At shutdown an idle connection is closed once its client has been silent this long: one that
# was just accepted or just answered is most likely sending a request right now.
QUIET_BEFORE_CLOSE_SECONDS = 1.0
# Between refusing new handshakes and closing the listener: handshakes already under way
# complete and are accepted (and answered) instead of being reset in the accept queue.
HANDSHAKE_SETTLE_SECONDS = 0.1


class _Refused(Exception):
    """Raised from a parser callback: the request is refused with ``status`` and the stream
    is out of sync from there on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpRequest:
    """One parsed request. Header names are lower-case; repeated headers are comma-joined."""

    __slots__ = ("body", "body_exceeded", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = b""
        self.body_exceeded = False  # the body is over the limit and was not read

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None


class HttpResponse:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers


Answer = HttpResponse | Awaitable[HttpResponse]
Handler = Callable[[HttpRequest], Answer]
ErrorResponder = Callable[[int, str], HttpResponse]

_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}


def encode_response(response: HttpResponse, keep_alive: bool) -> bytes:
    head = [
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        % (
            response.status,
            _REASONS.get(response.status, b"Unknown"),
            response.content_type.encode(),
            len(response.body),
        )
    ]
    if response.headers:
        for name, value in response.headers.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    head.append(response.body)
    return b"".join(head)


class _Resumed:
    """The rest of a coroutine that was started inline and is waiting on ``waiting_on``: awaiting
    this hands that wait to the task and then drives the coroutine on, as the task would have."""

    __slots__ = ("coroutine", "waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, HttpResponse], waiting_on: Any) -> None:
        self.coroutine = coroutine
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, HttpResponse]:
        coroutine, waiting_on = self.coroutine, self.waiting_on
        while True:
            try:
                yield waiting_on
            except BaseException as exc:  # thrown in by the task: cancellation
                try:
                    waiting_on = coroutine.throw(exc)
                except StopIteration as done:
                    return cast(HttpResponse, done.value)
            else:
                try:
                    waiting_on = coroutine.send(None)
                except StopIteration as done:
                    return cast(HttpResponse, done.value)


class HttpServer:
    """Serve ``handler`` on a TCP port; ``shutdown`` lets in-flight requests finish."""

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
        self._sweep_seconds = min(IDLE_SWEEP_SECONDS, keepalive_seconds / 2)
        self.connections: set[HttpConnection] = set()
        self.closing = False
        # False while draining and shutting down: every answer says Connection: close, so
        # clients leave on their own instead of racing a close on an idle connection.
        self.keep_alive = True
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed = asyncio.Event()
        # Connections with parsed requests, answered together once the loop has read all it can.
        self._ready: list[HttpConnection] = []
        self._answering_soon: asyncio.Handle | None = None
        # While answering them: what to send (or None: close), in order, after all are answered.
        self._outbox: list[tuple[HttpConnection, bytes | None]] | None = None

    async def start(self, host: str, port: int, *, backlog: int = 2048) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), host, port, backlog=backlog, reuse_address=True
        )
        self._sweeper = loop.call_later(self._sweep_seconds, self._sweep_idle)
        return int(self._server.sockets[0].getsockname()[1])

    def stop_keep_alive(self) -> None:
        """From now on every answer closes its connection (the drain before a shutdown)."""
        self.keep_alive = False

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop accepting, close idle connections, let in-flight requests finish (up to the
        grace period), then close what is left.

        No request is reset: new handshakes are refused first (the client's connect fails, so
        it never sent anything), the ones under way are accepted and served before the listener
        closes, requests received are answered with Connection: close, and idle connections are
        closed only after their client has been quiet a moment.
        """
        self.closing = True
        self.keep_alive = False
        if self._server is not None:
            if _refuse_new_handshakes(self._server.sockets):
                await asyncio.sleep(HANDSHAKE_SETTLE_SECONDS)
            self._server.close()
        for connection in list(self.connections):
            connection.close_when_idle()
        if self.connections:
            self._all_closed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), grace_seconds)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()

    def answer_soon(self, connection: HttpConnection) -> None:
        """Answer ``connection``'s parsed requests in this turn of the loop, after every
        connection with data has been read.

        Why: answering requests back to back and then sending every answer keeps the kernel's
        socket code from evicting the predictor's code and data from the CPU caches between two
        requests. Measured here at c=16, with the sends interleaved: ~85 µs of CPU a request;
        together: ~50 µs. With one connection it costs one more loop turn (microseconds).
        """
        if connection.answer_queued:
            return
        connection.answer_queued = True
        self._ready.append(connection)
        if self._answering_soon is None:
            self._answering_soon = asyncio.get_running_loop().call_soon(self._answer_ready)

    def _answer_ready(self) -> None:
        self._answering_soon = None
        ready, self._ready = self._ready, []
        for connection in ready:
            connection.answer_queued = False
        outbox: list[tuple[HttpConnection, bytes | None]] = []
        self._outbox = outbox
        try:
            for connection in ready:
                try:
                    connection.answer_pending()
                except Exception:
                    # Only this connection is lost; the others in the batch are still answered.
                    log.exception("internal error answering a connection; closing it")
                    connection.closing = True
                    outbox.append((connection, None))
        finally:
            self._outbox = None
            for connection, data in outbox:
                transport = connection.transport
                if transport is None:
                    continue
                if data is None:
                    connection.close_gracefully()
                else:
                    transport.write(data)

    def send(self, connection: HttpConnection, data: bytes | None) -> None:
        """Write ``data`` to the connection (None: close it), after the answers being made."""
        if self._outbox is not None:
            self._outbox.append((connection, data))
        elif connection.transport is not None:
            if data is None:
                connection.close_gracefully()
            else:
                connection.transport.write(data)

    def forget(self, connection: HttpConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    def _sweep_idle(self) -> None:
        deadline = time.monotonic() - self.keepalive_seconds
        for connection in list(self.connections):
            if connection.idle_since is not None and connection.idle_since < deadline:
                connection.close_when_idle()
            elif connection.in_message and connection.last_data < deadline:
                connection.time_out()  # silent for as long in the middle of a request
        self._sweeper = asyncio.get_running_loop().call_later(self._sweep_seconds, self._sweep_idle)


# A classic BPF socket filter for a listening TCP socket, run on each packet with the TCP header
# at offset 0: drop a bare SYN (a new handshake), keep everything else.
_BPF_LD_B_ABS, _BPF_AND_K, _BPF_JEQ_K, _BPF_RET_K = 0x30, 0x54, 0x15, 0x06
_TCP_FLAGS_OFFSET, _SYN, _ACK = 13, 0x02, 0x10
_DROP_NEW_HANDSHAKES = (
    (_BPF_LD_B_ABS, 0, 0, _TCP_FLAGS_OFFSET),
    (_BPF_AND_K, 0, 0, _SYN | _ACK),
    (_BPF_JEQ_K, 0, 1, _SYN),
    (_BPF_RET_K, 0, 0, 0),  # drop
    (_BPF_RET_K, 0, 0, 0xFFFFFFFF),  # keep the whole packet
)
_SO_ATTACH_FILTER = 26  # Linux


def _refuse_new_handshakes(listeners: Any) -> bool:
    """Make the kernel ignore new connection attempts on the listening sockets while the
    handshakes already under way complete; True when it could (Linux).

    Why: closing a listener resets every connection waiting in its accept queue, and those
    clients have already sent their requests. A connect that is ignored instead retries, finds
    the listener closed and is refused: the client knows it sent nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    program = ctypes.create_string_buffer(
        b"".join(struct.pack("HBBI", *op) for op in _DROP_NEW_HANDSHAKES)
    )
    fprog = struct.pack("HL", len(_DROP_NEW_HANDSHAKES), ctypes.addressof(program))
    refused = False
    for listener in listeners:
        try:
            # A duplicate of the descriptor: the loop's own socket object stays untouched.
            with socket.socket(fileno=os.dup(listener.fileno())) as sock:
                sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
            refused = True
        except OSError as exc:
            log.debug("cannot refuse new handshakes before closing the listener: %s", exc)
    return refused


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, dispatch in order, write, keep alive or close."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque[tuple[HttpRequest, bool]] = deque()
        self.busy = False  # a request's answer is being awaited
        self.answering: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.idle_since: float | None = time.monotonic()
        self.last_data = time.monotonic()  # when bytes last arrived
        self.in_message = False  # part of a request has arrived
        self.closing = False  # close after the answers owed
        self.ignore_input = False  # out of sync, or closing: what arrives is dropped unparsed
        self.lingering = False  # our FIN is sent; reading only to drop what still comes
        self.peer_closed = False  # the client half-closed: it sends nothing more
        self._linger_timer: asyncio.TimerHandle | None = None
        self.answer_queued = False  # in the server's list of connections to answer
        self.continue_owed = False  # a 100 Continue waits for the answers before it
        # A request that could not be parsed: answered (then the connection closes) after the
        # requests before it.
        self.failure: tuple[int, str] | None = None
        # the request being parsed
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._request: HttpRequest | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.ignore_input:
            return  # after a malformed request or our last answer: dropped, never half-read
        self.idle_since = None
        self.last_data = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._fail(refused.status, refused.message)
            else:
                self._fail(400, f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool:
        """The client half-closed (or closed): answer what it sent, then close. Returning True
        keeps our side open for those answers."""
        self.peer_closed = True
        if self.lingering:
            return False
        self.closing = True
        self.in_message = False  # a request cut short can never complete
        return self.busy or bool(self.pending) or self.failure is not None

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.in_message = True
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._request = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        if previous is None:
            self._headers[key] = text
        elif key == "host":
            raise _Refused(400, "more than one Host header")
        else:
            self._headers[key] = f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        if "host" not in self._headers and self.parser.get_http_version() == "1.1":
            raise _Refused(400, "an HTTP/1.1 request must carry a Host header")
        raw_path, _, raw_query = self._url.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        method = self.parser.get_method().decode("ascii")
        request = HttpRequest(method, path, raw_query.decode("latin-1"), self._headers)
        self._request = request
        length = request.content_length
        if length is not None and length > self.server.max_body_bytes:
            # Answer (after the requests before it) without reading a body we would refuse
            # anyway, then close; what arrives of this message is ignored.
            request.body_exceeded = True
            self._request = None
            self.pending.append((request, False))
            self._pause_reading()
            if not self.busy:
                self.server.answer_soon(self)
            return
        if self._headers.get("expect", "").lower() == "100-continue":
            if self.pending or self.busy:
                self.continue_owed = True  # after the answers to the requests before it
            else:
                self.server.send(self, CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None or request.body_exceeded:
            return
        self._body_size += len(body)
        if self._body_size > self.server.max_body_bytes:  # chunked, no length given
            request.body_exceeded = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        request = self._request
        if request is None:
            return  # refused from its headers, already queued
        if self._body:
            request.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        keep_alive = self.parser.should_keep_alive() and not request.body_exceeded
        self.pending.append((request, keep_alive))
        if len(self.pending) > MAX_PIPELINED:
            self._pause_reading()
        if not self.busy:
            self.server.answer_soon(self)

    # -- answering -------------------------------------------------------------------------
    def answer_pending(self) -> None:
        """Answer queued requests in order; an awaitable answer holds the queue."""
        while self.pending and not self.busy and self.transport is not None:
            request, keep_alive = self.pending.popleft()
            try:
                answer = self.server.handler(request)
            except Exception:
                log.exception("internal error answering %s %s", request.method, request.path)
                answer = self.server.error_response(500, INTERNAL_ERROR)
            if type(answer) is CoroutineType:
                # Run it here until it first waits: most answers (the inline LiteRT path) never
                # do, and then no task is created and no loop turn is spent (Python 3.12's eager
                # tasks, by hand). One that does wait continues in a task.
                try:
                    waiting_on = answer.send(None)
                except StopIteration as done:
                    answer = done.value
                except (Exception, asyncio.CancelledError):
                    log.exception("internal error answering %s %s", request.method, request.path)
                    answer = self.server.error_response(500, INTERNAL_ERROR)
                else:
                    answer = _Resumed(answer, waiting_on)
            if isinstance(answer, HttpResponse):
                self._write(answer, keep_alive)
            else:
                self.busy = True
                # Held so the task is not collected mid-flight (asyncio keeps weak references).
                self.answering = asyncio.ensure_future(self._finish(request, answer, keep_alive))
                return
        if not self.pending and not self.busy:
            if self.failure is not None:
                status, message = self.failure
                self.failure = None
                self.closing = True
                answer = self.server.error_response(status, message)
                self.server.send(self, encode_response(answer, False))
                self.server.send(self, None)
                return
            if self.continue_owed:
                self.continue_owed = False
                self.server.send(self, CONTINUE)
            self._resume_reading()
            self.idle_since = time.monotonic()
            if self.closing:
                self.server.send(self, None)
        elif not self.pending:
            self._resume_reading()

    async def _finish(
        self, request: HttpRequest, answer: Awaitable[HttpResponse], keep_alive: bool
    ) -> None:
        try:
            response = await answer
        except (Exception, asyncio.CancelledError):
            # A cancelled wait inside the handler, too: the connection must not stay busy.
            log.exception("internal error answering %s %s", request.method, request.path)
            response = self.server.error_response(500, INTERNAL_ERROR)
        self.busy = False
        self._write(response, keep_alive)
        self.answer_pending()

    def _write(self, response: HttpResponse, keep_alive: bool) -> None:
        if self.transport is None:
            return
        if self.closing or not self.server.keep_alive:
            # Winding down: answer the requests already received, closing after the last.
            keep_alive = keep_alive and (bool(self.pending) or self.failure is not None)
        try:
            data = encode_response(response, keep_alive)
        except Exception:  # e.g. a header value that is not latin-1
            log.exception("cannot encode the answer (status %d)", response.status)
            data = encode_response(self.server.error_response(500, INTERNAL_ERROR), keep_alive)
        self.server.send(self, data)
        if not keep_alive:
            self.closing = True
            self.pending.clear()
            self.failure = None
            self.server.send(self, None)

    def _fail(self, status: int, message: str) -> None:
        """A request we cannot parse: answer it after the requests before it, then close (the
        stream is out of sync, so nothing after it is read)."""
        self._pause_reading()
        self.ignore_input = True
        if self.failure is None:
            self.failure = (status, message)
        if not self.busy:
            self.server.answer_soon(self)

    # -- flow and lifecycle ----------------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closing:
            self.reading_paused = False
            self.transport.resume_reading()

    def time_out(self) -> None:
        """A client that went silent partway through a request: 408, then close. Answers still
        being made for earlier requests go first."""
        if self.failure is None and not self.lingering:
            self._fail(408, "the request was not completed in time")

    def close_when_idle(self) -> None:
        """Close after the answers owed; an idle connection once its client has been quiet
        for a moment (it may be sending a request right now)."""
        self.closing = True
        owed = self.busy or self.pending or self.failure is not None or self.answer_queued
        if owed or self.in_message or self.transport is None:
            return  # closed after the last answer
        quiet_for = time.monotonic() - (self.idle_since or self.last_data)
        if quiet_for >= QUIET_BEFORE_CLOSE_SECONDS:
            self.close_gracefully()
        else:
            asyncio.get_running_loop().call_later(
                QUIET_BEFORE_CLOSE_SECONDS - quiet_for, self.close_when_idle
            )

    def close_gracefully(self) -> None:
        """Send FIN after what is queued, then drop whatever the client still sends until it
        closes too (or LINGER_SECONDS): closing with unread data would reset the connection,
        and a reset can destroy answers the client has not read yet."""
        transport = self.transport
        if transport is None or self.lingering:
            return
        self.lingering = True
        self.ignore_input = True
        self.pending.clear()
        if self.peer_closed or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        self._linger_timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
