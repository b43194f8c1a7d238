"""The predictor's lean HTTP/1.1 transport (``--http-server httptools``): an asyncio protocol
over httptools (llhttp). The default is aiohttp's own server (``serving.transport_aiohttp``).

Why this one exists: on the LiteRT path the whole prediction (parse, validate, invoke,
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
What a client sends is bounded as aiohttp bounds it (``MAX_REQUEST_LINE_BYTES``,
``MAX_FIELD_BYTES``, ``MAX_HEADER_FIELDS``): a request line too long is 414, a header field too
long or too many of them 431, anything malformed 400, and the connection is closed after the
answer. The limits are checked as the bytes arrive, never after buffering them: data is parsed
a slice at a time and a head that stops making progress is refused. A connection holds at most
one read of unparsed data, the requests of one slice, and a full write buffer: reading stops
while requests queue up or the client does not read its answers (a pipelining flood); a request
head must be complete within ``HEAD_TIMEOUT_SECONDS`` (a client dribbling a byte at a time).
Header names and values we send are checked (no CR, LF or NUL), so a handler can never inject
a header.

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
import http
import logging
import time
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any, cast
from urllib.parse import unquote

import httptools

from serving.exchange import (
    HANDSHAKE_SETTLE_SECONDS,
    HEADER_NAME,
    INTERNAL_ERROR,
    MAX_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE_BYTES,
    QUIET_BEFORE_CLOSE_SECONDS,
    UNSAFE_HEADER_VALUE,
    ErrorResponder,
    Handler,
    HttpRequest,
    HttpResponse,
    refuse_new_handshakes,
)

# Re-exported: tests and older code import the request types and limits from here.
__all__ = [
    "FEED_SLICE_BYTES",
    "HEAD_TIMEOUT_SECONDS",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_FIELDS",
    "MAX_REQUEST_LINE_BYTES",
    "HttpConnection",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "encode_response",
]

log = logging.getLogger("serving.http")

# A request head (request line and header fields) must have arrived this long after its first
# byte (nginx's client_header_timeout): a client sending a byte at a time is cut with 408.
HEAD_TIMEOUT_SECONDS = 60.0
# Received data is parsed at most this much at a time. httptools keeps a header field whole
# until it ends, so a field growing past the limit is noticed between slices, not after 10 MB.
FEED_SLICE_BYTES = 16 * 1024
# Bytes a message may take with no progress shown by the parser (no field ended, no body bytes):
# a field at the limit with its separators and some whitespace, plus one slice (the progress
# may have come at its start).
_UNFLUSHED_LIMIT = MAX_FIELD_BYTES + FEED_SLICE_BYTES + 1024
IDLE_SWEEP_SECONDS = 5.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_PIPELINED = 16  # queued requests per connection before reading pauses
# After the last answer and our FIN, what the client still sends is read and dropped this long:
# closing a socket with unread data makes the kernel send a reset, and a reset can destroy
# answers the client has not read yet.
LINGER_SECONDS = 2.0


class _Refused(Exception):
    """Raised from a parser callback: the request is refused with ``status`` and the stream
    is out of sync from there on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
# Content types already checked and encoded: handlers use a handful.
_CONTENT_TYPES: dict[str, bytes] = {}
_CONTENT_TYPES_CACHED = 32


def _header_value(name: str, value: str) -> bytes:
    """``value`` encoded for a header field, or ValueError when it could end the field."""
    if UNSAFE_HEADER_VALUE.search(value) is not None:
        raise ValueError(f"the value of the {name!r} header holds CR, LF or NUL: {value!r}")
    return value.encode("latin-1")


def _header_field(name: str, value: str) -> bytes:
    if HEADER_NAME.fullmatch(name) is None:
        raise ValueError(f"not a header name: {name!r}")
    return b"%s: %s\r\n" % (name.encode("ascii"), _header_value(name, value))


def _content_type(value: str) -> bytes:
    encoded = _CONTENT_TYPES.get(value)
    if encoded is None:
        encoded = _header_value("Content-Type", value)
        if len(_CONTENT_TYPES) < _CONTENT_TYPES_CACHED:
            _CONTENT_TYPES[value] = encoded
    return encoded


def encode_response(response: HttpResponse, keep_alive: bool) -> bytes:
    """The answer's bytes; ValueError when a header name or value could inject a header."""
    head = [
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        % (
            response.status,
            _REASONS.get(response.status, b"Unknown"),
            _content_type(response.content_type),
            len(response.body),
        )
    ]
    if response.headers:
        for name, value in response.headers.items():
            head.append(_header_field(name, value))
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
        head_timeout_seconds: float = HEAD_TIMEOUT_SECONDS,
    ) -> None:
        self.handler = handler
        self.error_response = error_response
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        self.head_timeout_seconds = head_timeout_seconds
        self._sweep_seconds = min(
            IDLE_SWEEP_SECONDS, keepalive_seconds / 2, head_timeout_seconds / 2
        )
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
            if refuse_new_handshakes(self._server.sockets):
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
        now = time.monotonic()
        deadline = now - self.keepalive_seconds
        head_deadline = now - self.head_timeout_seconds
        for connection in list(self.connections):
            if connection.idle_since is not None and connection.idle_since < deadline:
                connection.close_when_idle()
            elif connection.in_message and connection.last_data < deadline:
                connection.time_out()  # silent for as long in the middle of a request
            elif connection.in_head and connection.message_started < head_deadline:
                connection.time_out()  # sending its head a byte at a time
        self._sweeper = asyncio.get_running_loop().call_later(self._sweep_seconds, self._sweep_idle)


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
        self.in_head = False  # ... and its head is not complete
        self.message_started = 0.0  # when its first bytes arrived
        self.writing_paused = False  # the write buffer is full: the client is not reading
        # Received data not parsed yet (reading is paused meanwhile): at most a slice's worth.
        self._unparsed: memoryview | None = None
        # How many bytes of the message were parsed with no progress shown by the parser, and
        # the progress at the last check (see _check_unflushed).
        self._unflushed = 0
        self._progress_mark = -1
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
        self._header_count = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._request: HttpRequest | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._unparsed = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self.server.forget(self)
        # The parser holds this protocol (its callbacks): a cycle that only a full collection
        # frees, and after gc.freeze() those are rare, so 2,000 closed connections stayed in
        # memory until one ran. Nothing is parsed once the connection is lost.
        del self.parser
        self._request = None

    def pause_writing(self) -> None:
        """The write buffer is full (the client sends without reading): read nothing more
        until it drains, so what a connection holds stays bounded."""
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if not self.busy:
            self.server.answer_soon(self)  # parses what is left, then reads on

    def data_received(self, data: bytes) -> None:
        if self.ignore_input:
            return  # after a malformed request or our last answer: dropped, never half-read
        self.idle_since = None
        self.last_data = time.monotonic()
        if len(data) > FEED_SLICE_BYTES:
            self._feed_slices(memoryview(data))
            return
        # _feed, inline: this is every request's path
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parser_error(exc)
        else:
            if self.in_message:
                self._check_unflushed(len(data))

    def _feed_slices(self, data: memoryview) -> None:
        """Parse ``data`` a slice at a time; what is left when reading pauses (too many
        requests queued, a full write buffer) waits in ``_unparsed``."""
        for start in range(0, len(data), FEED_SLICE_BYTES):
            if self.ignore_input:
                return
            if self.reading_paused:
                self._unparsed = data[start:]
                return
            self._feed(data[start : start + FEED_SLICE_BYTES])

    def _feed(self, data: bytes | memoryview) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parser_error(exc)
        else:
            if self.in_message:
                self._check_unflushed(len(data))

    def _parser_error(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._fail(400, "protocol upgrades are not supported")
            return
        refused = exc.__context__
        if isinstance(refused, _Refused):
            self._fail(refused.status, refused.message)
        else:
            self._fail(400, f"malformed HTTP request: {exc}")

    def _check_unflushed(self, fed: int) -> None:
        """Refuse a message whose parser holds too much it has not handed over: httptools
        keeps a header field (or trailer) whole until it ends, so one that never ends would
        grow without bound. Progress is a field ended or body bytes delivered."""
        progress = self._header_count + self._body_size + len(self._url)
        if progress != self._progress_mark:
            self._progress_mark = progress
            self._unflushed = fed  # the progress came somewhere in this slice
            return
        self._unflushed += fed
        if self._unflushed > _UNFLUSHED_LIMIT:
            if self.in_head:
                self._fail(431, f"a header field is longer than {MAX_FIELD_BYTES} bytes")
            else:
                self._fail(400, "a chunk line or trailer field is too long")

    def eof_received(self) -> bool:
        """The client half-closed (or closed): answer what it sent, then close. Returning True
        keeps our side open for those answers."""
        self.peer_closed = True
        if self.lingering:
            return False
        self.closing = True
        self.in_message = False  # a request cut short can never complete
        return (
            self.busy
            or bool(self.pending)
            or self.failure is not None
            or self._unparsed is not None
        )

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.in_message = True
        self.in_head = True
        self.message_started = self.last_data
        self._progress_mark = -1
        self._url = b""
        self._headers = {}
        self._header_count = 0
        self._body = []
        self._body_size = 0
        self._request = None

    def on_url(self, url: bytes) -> None:
        # Called with each piece as it arrives; the shortest line around it is "GET  HTTP/1.1".
        url = self._url + url
        if len(url) + 13 > MAX_REQUEST_LINE_BYTES:
            line = len(self.parser.get_method()) + len(url) + 10
            if line > MAX_REQUEST_LINE_BYTES:
                raise _Refused(
                    414, f"the request line is longer than {MAX_REQUEST_LINE_BYTES} bytes"
                )
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if len(name) + len(value) > MAX_FIELD_BYTES:
            raise _Refused(431, f"a header field is longer than {MAX_FIELD_BYTES} bytes")
        if self._header_count > MAX_HEADER_FIELDS:
            raise _Refused(431, f"more than {MAX_HEADER_FIELDS} header fields")
        if not self.in_head:
            return  # a trailer after a chunked body: counted and checked, never used
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
        self.in_head = False
        if "host" not in self._headers and self.parser.get_http_version() == "1.1":
            raise _Refused(400, "an HTTP/1.1 request must carry a Host header")
        if not self._url.startswith(b"/"):
            # absolute-form (http://host/path) is for proxies, authority- and asterisk-form for
            # CONNECT and OPTIONS: none names one of our paths, and a second host next to
            # Host is a confusion we do not need.
            raise _Refused(400, "the request target must be a path starting with /")
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
        self._body_size += len(body)  # also progress for _check_unflushed
        request = self._request
        if request is None or request.body_exceeded:
            return
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
            unparsed = self._unparsed is not None
            if unparsed and not self.writing_paused and not self._parse_unparsed():
                return  # answered in the next turn of the loop
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
            if self.closing and self._unparsed is None:
                self.server.send(self, None)
        elif not self.pending:
            self._resume_reading()

    def _parse_unparsed(self) -> bool:
        """Parse the data received before reading paused; True when all of it is parsed and
        nothing is owed for it (then reading may resume), False when it brought requests (or a
        refusal): they are answered in the next turn of the loop, which calls this again."""
        rest, self._unparsed = self._unparsed, None
        if rest is None or self.ignore_input:
            return True
        # The transport stays paused meanwhile; the flag only lets the slices be parsed. The
        # data counts as arrived now (the head deadline of a request starting in it).
        self.last_data = time.monotonic()
        self.reading_paused = False
        self._feed_slices(rest)
        self.reading_paused = True
        return not (self.pending or self.failure is not None or self._unparsed is not None)

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
            owed = bool(self.pending) or self.failure is not None or self._unparsed is not None
            keep_alive = keep_alive and owed
        try:
            data = encode_response(response, keep_alive)
        except Exception:  # e.g. a header value that is not latin-1
            log.exception("cannot encode the answer (status %d)", response.status)
            data = encode_response(self.server.error_response(500, INTERNAL_ERROR), keep_alive)
        self.server.send(self, data)
        if not keep_alive:
            self.closing = True
            self.pending.clear()
            self._unparsed = None
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
        if (
            self.reading_paused
            and self.transport is not None
            and not self.closing
            and not self.writing_paused
            and self._unparsed is None
        ):
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
        owed = (
            self.busy
            or self.pending
            or self.failure is not None
            or self.answer_queued
            or self._unparsed is not None
        )
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
        self._unparsed = None
        if self.peer_closed or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        self._linger_timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._end_linger)

    def _end_linger(self) -> None:
        """Close once what is queued is sent; a client that never reads it is cut after the
        keep-alive time (the closing transport would otherwise hold it forever)."""
        if self.transport is not None:
            self.transport.close()
            self._linger_timer = asyncio.get_running_loop().call_later(
                self.server.keepalive_seconds, self.abort
            )

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
