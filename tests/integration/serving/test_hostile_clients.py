"""Hostile and careless clients against a real predictor process, over raw sockets: half-closed
requests, clients sending through the drain and its end, overflowing V2 shapes, versions not
served, a body of many instances next to a liveness probe, and requests without one Host. Each
on both HTTP transports (``ready_predictor`` is one per transport)."""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.serving.conftest import HTTP_SERVERS
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

V1_PREDICT = "/v1/models/digits:predict"
V2_INFER = "/v2/models/digits/infer"
SOCKET_TIMEOUT = 60.0  # a guard against hanging forever, never a measurement


class IncompleteAnswer(Exception):
    """The connection ended before a whole answer arrived."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    method: str, path: str, body: bytes = b"", *, headers: tuple[str, ...] = ("Host: predictor",)
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *headers]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class AnswerReader:
    """Reads whole answers (Content-Length bodies) from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise IncompleteAnswer(f"connection closed with {len(self.buffer)} bytes of an answer")
        self.buffer += data

    def read(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(int(status_line.split()[1]), headers, body)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)


def exchange(port: int, raw: bytes) -> Answer:
    with connect(port) as sock:
        sock.sendall(raw)
        return AnswerReader(sock).read()


def v2_body(shape: Any, data: Any) -> bytes:
    tensor = {"name": "image", "shape": shape, "datatype": "FP32", "data": data}
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def image(tiny_model: TinyModel) -> list[Any]:
    image: list[Any] = tiny_model.images[0].tolist()
    return image


# -- half-closed requests -------------------------------------------------------------------------


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_client_that_half_closes_after_its_request_gets_its_answer_with_micro_batching(
    tiny_model: TinyModel, start_predictor: StartPredictor, image: list[Any], http_server: str
) -> None:
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--batch-timeout-ms",
        "5",
        http_server=http_server,
    )
    predictor.wait_ready()
    body = json.dumps({"instances": [image]}).encode()
    with connect(predictor.port) as sock:
        sock.sendall(request_bytes("POST", V1_PREDICT, body))
        sock.shutdown(socket.SHUT_WR)  # "that is all I will send"
        answer = AnswerReader(sock).read()
        assert sock.recv(1) == b""  # and then the predictor closes
    assert answer.status == 200
    assert len(answer.json()["predictions"]) == 1


# -- the drain and its end ----------------------------------------------------------------------


@dataclass
class Tally:
    """What clients saw. Clean outcomes: a whole answer, a connection refused or closed before
    anything was sent on it. Anything else (a reset, or a connection ending after a request
    was sent and before its whole answer) is a failure."""

    statuses: list[int] = field(default_factory=list)
    refused_before_sending: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int) -> None:
        with self.lock:
            self.statuses.append(status)

    def refused(self) -> None:
        with self.lock:
            self.refused_before_sending += 1

    def failed(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed this idle connection (nothing was sent on it since)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    return sock.recv(1, socket.MSG_PEEK) == b""


def _client(port: int, raw: bytes, keep_alive: bool, stop: threading.Event, tally: Tally) -> None:
    """Send ``raw`` in a loop: on one connection while the answers allow it, else a new one
    for each request."""
    sock: socket.socket | None = None
    while not stop.is_set():
        if sock is not None:
            try:
                closed = _closed_by_server(sock)
            except OSError as exc:
                tally.failed(f"idle connection: {exc!r}")
                closed = True
            if closed:
                tally.refused()
                sock.close()
                sock = None
        if sock is None:
            try:
                sock = connect(port)
            except OSError:  # refused (or reset) before anything was sent
                tally.refused()
                stop.wait(0.005)
                continue
            reader = AnswerReader(sock)
        try:
            sock.sendall(raw)
            answer = reader.read()
        except (OSError, IncompleteAnswer) as exc:
            tally.failed(f"request sent, then {exc!r}")
            answer = None
        if answer is not None:
            tally.answered(answer.status)
        if answer is None or not keep_alive or answer.closes:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


CLIENTS_OF_EACH_KIND = 4


def _clients_through_shutdown(predictor: PredictorProcess, image: list[Any], signals: int) -> Tally:
    """Keep-alive and Connection: close clients send in a loop from before SIGTERM until the
    predictor has exited; ``signals`` SIGTERMs are sent (the second once draining began)."""
    body = json.dumps({"instances": [image]}).encode()
    keep_alive_request = request_bytes("POST", V1_PREDICT, body)
    close_request = request_bytes(
        "POST", V1_PREDICT, body, headers=("Host: predictor", "Connection: close")
    )
    tally, stop = Tally(), threading.Event()
    clients = [
        threading.Thread(
            target=_client, args=(predictor.port, raw, keep_alive, stop, tally), daemon=True
        )
        for keep_alive, raw in [(True, keep_alive_request), (False, close_request)]
        for _ in range(CLIENTS_OF_EACH_KIND)
    ]
    for client in clients:
        client.start()
    try:
        predictor.wait_until(lambda: len(tally.statuses) >= 50, what="clients answered")
        predictor.terminate()
        if signals > 1:
            predictor.wait_until(lambda: "draining" in predictor.log(), what="draining")
            predictor.terminate()
        assert predictor.wait(60) == 0
    finally:
        stop.set()
        for client in clients:
            client.join(SOCKET_TIMEOUT)
    return tally


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_clients_sending_through_the_drain_and_its_end_are_answered_or_refused_cleanly(
    tiny_model: TinyModel, start_predictor: StartPredictor, image: list[Any], http_server: str
) -> None:
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--drain-seconds",
        "1.5",
        http_server=http_server,
    )
    predictor.wait_ready()
    tally = _clients_through_shutdown(predictor, image, signals=1)
    assert tally.failures == []
    assert set(tally.statuses) <= {200, 503}
    assert tally.refused_before_sending > 0  # the clients were still sending at the very end
    assert "stopped" in predictor.log()


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_second_sigterm_cuts_the_drain_short_and_still_resets_no_request(
    tiny_model: TinyModel, start_predictor: StartPredictor, image: list[Any], http_server: str
) -> None:
    predictor = start_predictor(
        "--model-uri",
        str(tiny_model.version_dir),
        "--drain-seconds",
        "600",
        http_server=http_server,
    )
    predictor.wait_ready()
    tally = _clients_through_shutdown(predictor, image, signals=2)
    assert tally.failures == []
    assert set(tally.statuses) <= {200, 503}
    assert tally.refused_before_sending > 0
    assert "stopped" in predictor.log()


# -- bad V2 shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "values"),
    [
        ([2**62, 4], 0),  # the element count overflows int64
        ([2**62, 4], 64),
        ([2**62, 2**62], 0),
        ([2**31, 2**31, 2**31], 0),
        ([True, 8, 8, 1], 64),  # JSON true is not a dimension
        ([1, 8, 8, True], 64),
        ([-1, 8, 8, 1], 64),
        ([1, -8, -8, 1], 64),
        ([1.0, 8, 8, 1], 64),
        ([1, 8, 8, 1.5], 64),
        (["1", 8, 8, 1], 64),
    ],
)
def test_a_v2_shape_that_overflows_or_is_not_non_negative_integers_is_400_without_a_traceback(
    ready_predictor: PredictorProcess, shape: list[Any], values: int
) -> None:
    answer = exchange(
        ready_predictor.port, request_bytes("POST", V2_INFER, v2_body(shape, [0] * values))
    )
    assert answer.status == 400
    assert "shape" in answer.json()["error"]
    assert "Traceback" not in ready_predictor.log()


# -- versions not served --------------------------------------------------------------------


VERSIONED_ROUTES = [
    ("GET", "/v2/models/digits/versions/{v}/ready"),
    ("GET", "/v2/models/digits/versions/{v}"),
    ("POST", "/v2/models/digits/versions/{v}/infer"),
    ("GET", "/v1/models/digits/versions/{v}"),
    ("GET", "/v1/models/digits/versions/{v}/metadata"),
    ("POST", "/v1/models/digits/versions/{v}:predict"),
]


def _body_for(path: str, image: list[Any]) -> bytes:
    if path.endswith(":predict"):
        return json.dumps({"instances": [image]}).encode()
    if path.endswith("/infer"):
        flat = [value for row in image for column in row for value in column]
        return v2_body([1, 8, 8, 1], flat)
    return b""


@pytest.mark.parametrize(("method", "route"), VERSIONED_ROUTES)
def test_every_versioned_route_answers_404_for_a_version_not_served_and_200_for_the_one_served(
    ready_predictor: PredictorProcess,
    tiny_model: TinyModel,
    image: list[Any],
    method: str,
    route: str,
) -> None:
    body = _body_for(route, image)
    missing = exchange(ready_predictor.port, request_bytes(method, route.format(v=999), body))
    assert missing.status == 404
    assert "version 999" in missing.json()["error"]
    served = exchange(
        ready_predictor.port, request_bytes(method, route.format(v=tiny_model.version), body)
    )
    assert served.status == 200


# -- a body of many instances -------------------------------------------------------------------

MANY_INSTANCES = 131_000  # 16.7 MB of V2 JSON: under the 16 MiB default limit


def _server_side_unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the predictor's kernel holds for it on this connection, not read yet (Linux)."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16)
    return None


def test_liveness_is_answered_while_a_body_of_many_instances_is_decoded_and_predicted(
    ready_predictor: PredictorProcess,
) -> None:
    port = ready_predictor.port
    body = v2_body([MANY_INSTANCES, 8, 8, 1], [0] * (MANY_INSTANCES * 64))
    with connect(port) as big, connect(port) as probe:
        big.sendall(request_bytes("POST", V2_INFER, body))
        # Send the probe only once the predictor has read the whole big request: from then on
        # it is working on it.
        client_port = big.getsockname()[1]
        ready_predictor.wait_until(
            lambda: _server_side_unread_bytes(port, client_port) == 0,
            what="the predictor read the whole body",
        )
        probe.sendall(request_bytes("GET", "/v2/health/live"))
        live = AnswerReader(probe).read()
        big_answered_first, _, _ = select.select([big], [], [], 0)
        answer = AnswerReader(big).read()
    assert live.status == 200
    assert live.json() == {"live": True}
    assert answer.status == 200
    assert not big_answered_first  # the probe sent after the big request was answered first
    (output,) = answer.json()["outputs"]
    assert output["shape"][0] == MANY_INSTANCES


# -- Host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "words"),
    # (the words are each transport's: httptools, aiohttp)
    [
        ((), "Host"),
        (("Host: predictor", "Host: elsewhere"), "more than one Host|Duplicate 'Host'"),
    ],
    ids=["no-host", "two-hosts"],
)
def test_an_http11_request_without_exactly_one_host_is_400_and_closed(
    ready_predictor: PredictorProcess, headers: tuple[str, ...], words: str
) -> None:
    with connect(ready_predictor.port) as sock:
        sock.sendall(request_bytes("GET", "/v2/health/live", headers=headers))
        reader = AnswerReader(sock)
        answer = reader.read()
        assert sock.recv(1) == b""
    assert answer.status == 400
    assert re.search(words, answer.json()["error"]), answer.json()
    assert answer.closes


def test_an_http10_request_without_host_is_still_answered(
    ready_predictor: PredictorProcess,
) -> None:
    with connect(ready_predictor.port) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        answer = AnswerReader(sock).read()
    assert answer.status == 200
