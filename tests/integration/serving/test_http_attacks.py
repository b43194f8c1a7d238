"""The classic attacks on an HTTP server, against a real predictor process over raw sockets.

Each case sends what a hostile or broken client sends and checks three things: a clear 4xx (the
status the transport gives, where it matters) or a closed connection; the predictor healthy
afterwards (liveness and a real prediction on a new connection); and its memory bounded during
the attack and back near where it was after it (VmHWM and VmRSS in /proc/<pid>/status; loose
bounds, the point is megabytes against the hundreds a buffering server takes).

The predictor is started once per transport (``TRANSPORTS``): aiohttp (the default) and the lean
httptools one, each with the statuses it documents where the two differ.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from serving.exchange import MAX_FIELD_BYTES, MAX_HEADER_FIELDS, MAX_REQUEST_LINE_BYTES
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

V1_PREDICT = "/v1/models/digits:predict"
LIVE = "/v2/health/live"
MAX_BODY_BYTES = 1024 * 1024
SOCKET_TIMEOUT = 30.0  # a guard against hanging forever, never a measurement
# Loose memory bounds, in MB: the peak during one attack and what stays after it, above the RSS
# before it. A server that buffers what it is sent takes 10-100 × more for these inputs.
PEAK_MB = 24.0
KEPT_MB = 8.0
# What two waves of 2,000 connections may leave. A connection costs 4-6 KB of Python objects
# (aiohttp's handler, parser, task, queue and timer; our protocol and parser), all freed on close
# (tracemalloc: back to under 1 MB), but the allocators keep some 8-10 MB of the freed pages
# for reuse. What matters is that the next wave reuses them: REUSED_MB.
IDLE_KEPT_MB = 14.0
REUSED_MB = 2.0


@dataclass(frozen=True)
class Transport:
    name: str
    flags: tuple[str, ...]
    # What this transport answers where transports may differ (aiohttp answers 400 for all).
    request_line_too_long: int
    header_field_too_long: int
    too_many_header_fields: int
    absolute_form_target: int


TRANSPORTS = [
    Transport(
        "aiohttp",
        ("--http-server", "aiohttp"),
        # aiohttp's parser answers every head it refuses with 400 ("Got more than 8190 bytes")
        request_line_too_long=400,
        header_field_too_long=400,
        too_many_header_fields=400,
        absolute_form_target=400,
    ),
    Transport(
        "httptools",
        ("--http-server", "httptools"),
        request_line_too_long=414,
        header_field_too_long=431,
        too_many_header_fields=431,
        absolute_form_target=400,
    ),
]


@dataclass
class Outcome:
    """What a client saw: the first answer's status (None: none came) and whether the server
    closed the connection (a FIN, a reset, or ``Connection: close`` on the answer)."""

    status: int | None
    closed: bool
    head: str = ""
    body: bytes = b""
    sent: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Predictor:
    process: PredictorProcess
    transport: Transport
    image: list[Any]
    peaks: list[float] = field(default_factory=list)
    kept_mb: float = KEPT_MB  # what the test at hand may leave (the fixture resets it)

    @property
    def port(self) -> int:
        return self.process.port

    def status(self, key: str) -> float:
        """A field of /proc/<pid>/status in MB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(key)

    def reset_peak(self) -> None:
        """Start VmHWM again from the current RSS (Linux: 5 > clear_refs)."""
        Path(f"/proc/{self.process.process.pid}/clear_refs").write_text("5")

    def v1_body(self) -> bytes:
        return json.dumps({"instances": [self.image]}).encode()


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: tuple[str, ...] = ("Host: predictor",),
    length: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *headers]
    if method == "POST" and length:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _whole_answer(received: bytes) -> tuple[str, bytes] | None:
    head, found, rest = received.partition(b"\r\n\r\n")
    if not found:
        return None
    text = head.decode("latin-1")
    length = 0
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if text.startswith("HTTP/1.1 100 "):
        return _whole_answer(rest)
    if len(rest) < length:
        return None
    return text, rest[:length]


def send(port: int, payload: bytes, *, timeout: float = SOCKET_TIMEOUT) -> Outcome:
    """Send ``payload`` (however large) while reading what comes back, until the server closes
    or, everything sent, a whole answer has come. A server that stops reading and closes is a
    clean outcome, so errors on sending end the sending, not the exchange."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    received = b""
    closed = False
    deadline = time.monotonic() + timeout
    poll = select.poll()  # not select(): the idle-connections test takes descriptors past 1024
    try:
        while time.monotonic() < deadline:
            writing = sent < len(view)
            poll.register(sock, select.POLLIN | (select.POLLOUT if writing else 0))
            events = dict(poll.poll(500))
            readable = events.get(sock.fileno(), 0) & (
                select.POLLIN | select.POLLHUP | select.POLLERR
            )
            writable = events.get(sock.fileno(), 0) & select.POLLOUT
            if readable:
                try:
                    data = sock.recv(1 << 20)
                except ConnectionResetError:
                    closed = True
                    break
                if not data:
                    closed = True
                    break
                received += data
            if writable:
                try:
                    sent += sock.send(view[sent : sent + (1 << 20)])
                except (BrokenPipeError, ConnectionResetError):
                    sent = len(view)  # the server stopped reading: it has answered or closed
            if sent >= len(view) and _whole_answer(received) is not None:
                break
        else:
            raise TimeoutError(f"no answer and no close in {timeout} s: {received[:200]!r}")
    finally:
        sock.close()
    whole = _whole_answer(received)
    if whole is None:
        return Outcome(None, closed, sent=sent)
    head, body = whole
    status = int(head.split(" ", 2)[1])
    closes = closed or "\r\nconnection: close" in head.lower()
    return Outcome(status, closes, head, body, sent)


@pytest.fixture(scope="module", params=TRANSPORTS, ids=lambda t: t.name)
def predictor(
    request: pytest.FixtureRequest,
    tiny_model: TinyModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Predictor]:
    transport: Transport = request.param
    folder = tmp_path_factory.mktemp(f"attacked-{transport.name}")
    process = PredictorProcess(
        folder / "predictor.log",
        *transport.flags,
        "--cache-dir",
        str(folder / "cache"),
        "--model-uri",
        str(tiny_model.version_dir),
        "--max-body-bytes",
        str(MAX_BODY_BYTES),
        "--drain-seconds",
        "0",
    )
    try:
        process.wait_ready()
        image: list[Any] = tiny_model.images[0].tolist()
        yield Predictor(process, transport, image)
    finally:
        process.stop()
    log = process.log()
    assert "Traceback" not in log, log


@pytest.fixture
def attacked(predictor: Predictor) -> Iterator[Predictor]:
    """The predictor, checked after the test: healthy, and its memory bounded."""
    healthy(predictor)  # warm: the first prediction allocates what the later ones reuse
    before = predictor.status("VmRSS")
    predictor.reset_peak()
    yield predictor
    peak = predictor.status("VmHWM")
    healthy(predictor)
    after = predictor.status("VmRSS")
    assert peak - before <= PEAK_MB, f"RSS peaked at {peak:.1f} MB from {before:.1f} MB"
    assert after - before <= predictor.kept_mb, f"RSS {after:.1f} MB after, {before:.1f} MB before"
    predictor.kept_mb = KEPT_MB


def healthy(predictor: Predictor) -> None:
    live = send(predictor.port, request_bytes("GET", LIVE), timeout=10)
    assert (live.status, live.json()) == (200, {"live": True})
    predicted = send(predictor.port, request_bytes("POST", V1_PREDICT, predictor.v1_body()))
    assert predicted.status == 200, predicted.body
    assert len(predicted.json()["predictions"]) == 1


def answers_in(received: bytes) -> list[bytes]:
    """The answers in ``received``, each from its status code on. (aiohttp answers a request
    it could not parse as HTTP/1.0: it never learnt the request's version.)"""
    return re.split(rb"HTTP/1\.[01] ", received)[1:]


def assert_refused(outcome: Outcome, status: int | None = None) -> None:
    """A clear 4xx (``status`` when given) and the connection closed, or closed at once."""
    if status is not None:
        assert outcome.status == status, (outcome.head, outcome.body)
    assert outcome.status is None or 400 <= outcome.status < 500, (outcome.head, outcome.body)
    assert outcome.closed


# -- sizes: aiohttp's limits ----------------------------------------------------------------------


def test_a_10_mb_header_is_refused_before_it_is_read(attacked: Predictor) -> None:
    raw = request_bytes("GET", LIVE, headers=("Host: predictor", "X-Big: " + "a" * 10_000_000))
    outcome = send(attacked.port, raw)
    assert_refused(outcome, attacked.transport.header_field_too_long)


def test_a_5_mb_url_is_refused_before_it_is_read(attacked: Predictor) -> None:
    outcome = send(attacked.port, request_bytes("GET", "/v2/" + "a" * 5_000_000))
    assert_refused(outcome, attacked.transport.request_line_too_long)


def test_2000_headers_of_8_kb_are_refused_after_the_128th(attacked: Predictor) -> None:
    fields = tuple(f"X-{n:04d}: {'v' * 8000}" for n in range(2000))
    outcome = send(attacked.port, request_bytes("GET", LIVE, headers=("Host: p", *fields)))
    assert_refused(outcome, attacked.transport.too_many_header_fields)


def test_the_limits_themselves_are_served(attacked: Predictor) -> None:
    """At the limits, not over: a request line of MAX_REQUEST_LINE_BYTES and MAX_HEADER_FIELDS
    fields of MAX_FIELD_BYTES each are answered (404 for the long path, a prediction)."""
    path = "/v2/" + "a" * (MAX_REQUEST_LINE_BYTES - len("GET /v2/ HTTP/1.1") - 1)
    outcome = send(attacked.port, request_bytes("GET", path))
    assert outcome.status == 404
    fields = tuple(
        f"X-{n:04d}: {'v' * (MAX_FIELD_BYTES - 6)}" for n in range(MAX_HEADER_FIELDS - 3)
    )
    raw = request_bytes("POST", V1_PREDICT, attacked.v1_body(), headers=("Host: p", *fields))
    assert send(attacked.port, raw).status == 200


# -- request smuggling: framing a front proxy could read differently ---------------------------


SMUGGLED = b"GET /v2/smuggled HTTP/1.1\r\nHost: predictor\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 5"),
        ("Content-Length: 5", "Content-Length: 5"),
        ("Content-Length: 5", "Content-Length: 50"),
        ("Content-Length: 5, 50",),
        ("Content-Length: +5",),
        ("Content-Length: -1",),
        ("Content-Length: 0x5",),
        ("Transfer-Encoding: chunked , x",),
        ("Transfer-Encoding: xchunked",),
        ("Transfer-Encoding: chunked, identity",),
        ("Transfer-Encoding: identity",),
        ("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding : chunked",),
        ("Transfer-Encoding:\x0bchunked",),
        ("Transfer-Encoding:\x0cchunked",),
        ("X-Folded: a", " Transfer-Encoding: chunked"),
        ("X-Folded: a", "\tTransfer-Encoding: chunked"),
        ("Transfer-Encoding\t: chunked",),
    ],
    ids=[
        "cl-then-te",
        "te-then-cl",
        "two-equal-cl",
        "two-different-cl",
        "cl-list",
        "cl-plus-sign",
        "cl-negative",
        "cl-hex",
        "te-chunked-comma-x",
        "te-xchunked",
        "te-chunked-then-identity",
        "te-identity",
        "te-twice",
        "te-space-before-colon",
        "te-vertical-tab",
        "te-form-feed",
        "te-folded-space",
        "te-folded-tab",
        "te-tab-before-colon",
    ],
)
def test_ambiguous_framing_is_400_and_nothing_after_it_is_read(
    attacked: Predictor, framing: tuple[str, ...]
) -> None:
    """Whatever a proxy in front made of it, the predictor answers one 400 and closes: no
    request hidden in the body (``SMUGGLED``) is ever answered."""
    body = b"0\r\n\r\n" + SMUGGLED
    raw = request_bytes(
        "POST", V1_PREDICT, body, headers=("Host: predictor", *framing), length=False
    )
    outcome = send(attacked.port, raw)
    assert_refused(outcome, 400)
    assert b"smuggled" not in outcome.body


@pytest.mark.parametrize(
    ("before", "after"),
    [("\t", ""), ("\t", "\t"), (" \t ", " "), ("  ", "  ")],
    ids=["tab-before", "tab-around", "tabs-and-spaces", "spaces-around"],
)
def test_transfer_encoding_with_whitespace_is_read_as_chunked_or_refused(
    attacked: Predictor, before: str, after: str
) -> None:
    """Tabs and spaces around the value are optional whitespace (RFC 9110): the body is framed
    as chunked and the request after it is answered on its own, or (llhttp is stricter about
    a trailing tab) the request is refused and the connection closed; never anything between."""
    body = attacked.v1_body()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    raw = request_bytes(
        "POST",
        V1_PREDICT,
        chunked,
        headers=(
            "Host: predictor",
            "Content-Type: application/json",
            f"Transfer-Encoding:{before}chunked{after}",
        ),
        length=False,
    )
    with socket.create_connection(("127.0.0.1", attacked.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(raw + request_bytes("GET", LIVE))
        sock.shutdown(socket.SHUT_WR)
        everything = b""
        while chunk := sock.recv(1 << 16):
            everything += chunk
    answers = answers_in(everything)
    statuses = [a[:3] for a in answers]
    assert statuses in ([b"200", b"200"], [b"400"]), answers
    if statuses == [b"200", b"200"]:
        assert b"predictions" in answers[0]
        assert answers[1].endswith(b'{"live":true}')


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nab\r\n0\r\n\r\n",
        b"-2\r\nab\r\n0\r\n\r\n",
        b"+2\r\nab\r\n0\r\n\r\n",
        b"0x2\r\nab\r\n0\r\n\r\n",
        b"2 \r\nab\r\n0\r\n\r\n",
        b" 2\r\nab\r\n0\r\n\r\n",
        b"fffffffffffffffffff\r\nab\r\n0\r\n\r\n",
        b"2\r\nabc\r\n0\r\n\r\n",
        b"2\r\na\r\n0\r\n\r\n",
        b"2\nab\n0\n\n",
        b'2;a="b\r\nab\r\n0\r\n\r\n',
        b"2;\x00\r\nab\r\n0\r\n\r\n",
        b"2;" + b"e" * 100_000 + b"\r\nab\r\n0\r\n\r\n",
        b"2\r\nab\r\n0\r\nX-Trailer: " + b"t" * 100_000 + b"\r\n\r\n",
    ],
    ids=[
        "not-hex",
        "negative",
        "plus-sign",
        "0x-prefix",
        "space-after",
        "space-before",
        "overflow",
        "more-data-than-size",
        "less-data-than-size",
        "bare-lf",
        "unterminated-quoted-extension",
        "nul-in-extension",
        "100-kb-extension",
        "100-kb-trailer",
    ],
)
def test_bad_chunk_sizes_extensions_and_trailers_are_400(
    attacked: Predictor, chunks: bytes
) -> None:
    raw = request_bytes(
        "POST",
        V1_PREDICT,
        chunks,
        headers=("Host: predictor", "Content-Type: application/json", "Transfer-Encoding: chunked"),
        length=False,
    )
    assert_refused(send(attacked.port, raw), 400)


# -- bytes that do not belong -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/health/live HTTP/1.1\nHost: predictor\n\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: predictor\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: predictor\r\n\n",
        b"GET /v2/health/live HTTP/1.1\rHost: predictor\r\r",
    ],
    ids=["bare-lf-everywhere", "bare-lf-after-a-header", "bare-lf-ending-the-head", "bare-cr"],
)
def test_bare_lf_or_cr_line_endings_are_400(attacked: Predictor, raw: bytes) -> None:
    assert_refused(send(attacked.port, raw), 400)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/health/\x00live HTTP/1.1\r\nHost: predictor\r\n\r\n",
        b"GET /v2/health/live\x00 HTTP/1.1\r\nHost: predictor\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: predictor\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: predictor\r\nX-N\x00ul: ab\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: pre\x00dictor\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: predictor\r\nX-Cr: a\rb\r\n\r\n",
        b"G\x00ET /v2/health/live HTTP/1.1\r\nHost: predictor\r\n\r\n",
    ],
    ids=[
        "nul-in-target",
        "nul-after-target",
        "nul-in-header-value",
        "nul-in-header-name",
        "nul-in-host",
        "cr-in-header-value",
        "nul-in-method",
    ],
)
def test_nul_and_stray_cr_bytes_in_the_head_are_400(attacked: Predictor, raw: bytes) -> None:
    assert_refused(send(attacked.port, raw), 400)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/health/live HTTP/1.1\r\nHost: p\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: p\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" + SMUGGLED,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /v2/health/live HTTP/2.0\r\nHost: p\r\n\r\n",
        b"GET /v2/health/live HTTP/1.2\r\nHost: p\r\n\r\n",
        b"GET /v2/health/live HTTP/0.9\r\nHost: p\r\n\r\n",
        b"GET /v2/health/live\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    ],
    ids=[
        "websocket-upgrade",
        "h2c-upgrade",
        "http2-preface",
        "http-2.0",
        "http-1.2",
        "http-0.9-line",
        "http-0.9",
        "tls-client-hello",
    ],
)
def test_upgrades_other_protocols_and_versions_are_refused_or_answered_once_and_closed(
    attacked: Predictor, raw: bytes
) -> None:
    """An Upgrade is ignored (RFC 9110 7.8: the request is answered over HTTP/1.1) and nothing
    sent after it is read; an HTTP/0.9 or 2.0 request line is answered once and closed (llhttp
    takes both); HTTP/2's preface, an unknown version and TLS are 400. Never a second request
    answered (``SMUGGLED`` after an h2c upgrade)."""
    with socket.create_connection(("127.0.0.1", attacked.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(raw)
        everything = b""
        while chunk := sock.recv(1 << 16):  # until the predictor closes
            everything += chunk
    statuses = [int(answer[:3]) for answer in answers_in(everything)]
    assert len(statuses) <= 2, everything
    assert all(status == 400 for status in statuses[1:]), everything
    assert statuses[:1] in ([], [200], [400]), everything
    assert b"smuggled" not in everything


def test_a_percent_encoded_nul_in_the_path_is_an_unknown_path(attacked: Predictor) -> None:
    outcome = send(attacked.port, request_bytes("GET", "/v2/health/%00live"))
    assert outcome.status == 404
    assert outcome.json()["error"].startswith("no such endpoint")


@pytest.mark.parametrize(
    "target",
    ["http://predictor/v2/health/live", "http://evil.example/v2/health/live", "*", "predictor:80"],
    ids=["absolute-form", "absolute-form-other-host", "asterisk-form", "authority-form"],
)
def test_a_target_that_is_not_a_path_is_refused(attacked: Predictor, target: str) -> None:
    method = {"*": "OPTIONS", "predictor:80": "CONNECT"}.get(target, "GET")
    outcome = send(attacked.port, request_bytes(method, target))
    assert_refused(outcome, attacked.transport.absolute_form_target)


# -- floods, slow clients and idle connections ---------------------------------------------------


def test_a_pipelining_flood_is_held_bounded_and_others_are_served_meanwhile(
    attacked: Predictor,
) -> None:
    """300,000 requests (15 MB) sent without reading one answer: the predictor stops reading
    once its answers are unread (it takes a few MB and waits), keeps answering other clients,
    and drops the rest when the client goes. A server that read on would buffer 30 MB of
    answers. (That every request of a flood is answered in order: the unit tests.)"""
    flood = request_bytes("GET", LIVE) * 300_000
    sock = socket.socket()
    # Small buffers on the client's side, so what the kernel holds does not hide the server's.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    with sock:
        sock.connect(("127.0.0.1", attacked.port))
        sock.setblocking(False)
        view = memoryview(flood)
        sent = 0
        last_progress = time.monotonic()
        deadline = last_progress + 60
        while sent < len(view) and time.monotonic() < deadline:
            try:
                sent += sock.send(view[sent : sent + 65536])
                last_progress = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - last_progress > 1.0:
                    break  # the predictor stopped reading
                time.sleep(0.01)
        assert sent < len(view) // 2, f"the predictor read {sent} of {len(view)} bytes"
        started = time.monotonic()
        for _ in range(20):
            assert send(attacked.port, request_bytes("GET", LIVE), timeout=5).status == 200
        assert time.monotonic() - started < 5.0


def test_a_client_sending_a_byte_a_second_holds_only_its_own_connection(
    attacked: Predictor,
) -> None:
    """Slowloris, kept short: while one client sends its head a byte a second, others are
    answered at once. (The head deadline that cuts it, HEAD_TIMEOUT_SECONDS, is a minute; the
    predictor has no flag to shorten it, so the cut itself is tested in the unit tests.)"""
    raw = request_bytes("GET", LIVE)
    with socket.create_connection(("127.0.0.1", attacked.port), timeout=SOCKET_TIMEOUT) as slow:
        for byte in raw[:6]:
            slow.sendall(bytes([byte]))
            started = time.monotonic()
            assert send(attacked.port, request_bytes("GET", LIVE), timeout=5).status == 200
            assert time.monotonic() - started < 1.0
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        slow.sendall(raw[6:])  # and then it finishes: answered like any request
        assert _read_answer(slow).startswith(b"HTTP/1.1 200")


def _read_answer(sock: socket.socket) -> bytes:
    received = b""
    while _whole_answer(received) is None:
        chunk = sock.recv(1 << 16)
        assert chunk, received
        received += chunk
    return received


def test_2000_idle_connections_cost_little_and_others_are_served(attacked: Predictor) -> None:
    attacked.kept_mb = IDLE_KEPT_MB
    after_waves = []
    for _ in range(2):  # the second wave must reuse what the first left, not add to it
        _idle_connections(attacked)
        healthy(attacked)
        after_waves.append(attacked.status("VmRSS"))
    assert after_waves[1] - after_waves[0] <= REUSED_MB, after_waves


def _idle_connections(attacked: Predictor) -> None:
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", attacked.port), timeout=10))
        # and half of them have started a request they never finish
        for sock in idle[::2]:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: pre")
        started = time.monotonic()
        healthy(attacked)
        assert time.monotonic() - started < 5.0
    finally:
        for sock in idle:
            sock.close()


# -- bodies ---------------------------------------------------------------------------------------


def test_expect_100_continue_over_the_body_limit_is_413_without_reading_the_body(
    attacked: Predictor,
) -> None:
    raw = request_bytes(
        "POST",
        V1_PREDICT,
        headers=(
            "Host: predictor",
            "Content-Type: application/json",
            f"Content-Length: {1024**3}",
            "Expect: 100-continue",
        ),
        length=False,
    )
    with socket.create_connection(("127.0.0.1", attacked.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(raw)  # and never a byte of the body
        answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert b"100 Continue" not in answer
        assert b"connection: close" in answer.lower()
        assert sock.recv(1) == b""  # closed


@pytest.mark.parametrize("pieces", [1, 64], ids=["in-one-piece", "in-64-pieces"])
def test_a_chunked_body_over_the_limit_is_413_and_closed(attacked: Predictor, pieces: int) -> None:
    """No length to refuse up front: the body is counted as it arrives, whether all of it came
    with the head or it trickles in."""
    chunk = b"%x\r\n%s\r\n" % (MAX_BODY_BYTES // pieces + 1, b"1" * (MAX_BODY_BYTES // pieces + 1))
    raw = request_bytes(
        "POST",
        V1_PREDICT,
        chunk * pieces + b"0\r\n\r\n",
        headers=("Host: predictor", "Content-Type: application/json", "Transfer-Encoding: chunked"),
        length=False,
    )
    assert_refused(send(attacked.port, raw), 413)


def test_deeply_nested_json_is_400_without_a_recursion_error(attacked: Predictor) -> None:
    depth = 100_000
    body = b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
    outcome = send(attacked.port, request_bytes("POST", V1_PREDICT, body))
    assert outcome.status == 400
    assert "invalid JSON" in outcome.json()["error"]
    assert "Recursion" not in attacked.process.log()


@pytest.mark.parametrize(
    "number",
    [
        b"1e999999",
        b"-1e999999",
        b"1" * 10_000,
        b"-" + b"9" * 10_000,
        b"0." + b"1" * 10_000 + b"e99999",
    ],
    ids=[
        "1e999999",
        "minus-1e999999",
        "10000-digit-integer",
        "minus-10000-digits",
        "long-fraction",
    ],
)
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_huge_numbers_are_400(attacked: Predictor, number: bytes, protocol: str) -> None:
    if protocol == "v1":
        image = [[[0.0] for _ in range(8)] for _ in range(8)]
        body = json.dumps({"instances": [image]}).encode()
        path = V1_PREDICT
    else:
        tensor = {"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.0] * 64}
        body = json.dumps({"inputs": [tensor]}).encode()
        path = "/v2/models/digits/infer"
    body = body.replace(b"0.0", number, 1)
    outcome = send(attacked.port, request_bytes("POST", path, body))
    assert outcome.status == 400, outcome.body
    assert "error" in outcome.json()
