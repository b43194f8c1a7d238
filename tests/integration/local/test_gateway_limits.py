"""The local gateway against a real agent and real predictors: it forwards a request as the
client sent it (a body without Content-Type is answered as a replica answers it), and it holds
no more of a body than the predictors accept: over their limit is a 413 in JSON, answered
before the rest of the body is read."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest

from console.backends.local import LocalBackend
from console.local.launch import paths_for, running_agent
from console.model import DeploymentState, DeployRequest
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import DigitsStore

NAME = "digits-a"
PREDICTORS_LIMIT = 16 * 1024 * 1024  # serving's --max-body-bytes default; the profile sets none
MIB = 1024 * 1024
# Only a guard against a hang: nothing here measures time.
SOCKET_TIMEOUT = 120


@pytest.fixture
def serving(backend: LocalBackend) -> LocalBackend:
    result = backend.deploy(DeployRequest(NAME, "digits", 1, "default", 1))
    assert result.ok, result.message

    def available() -> bool:
        row = backend.deployment("default", NAME)
        return row is not None and row.state is DeploymentState.AVAILABLE

    poll_until(f"{NAME} Available", available, 120)
    return backend


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """A POST with exactly these headers (http.client adds Host, Content-Length and
    Accept-Encoding: identity; no Content-Type unless given)."""
    connection = http.client.HTTPConnection(*host_port(url), timeout=SOCKET_TIMEOUT)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def predict_body(store: DigitsStore, padding: int = 0) -> bytes:
    body = json.dumps({"instances": store.images[:2].tolist()}).encode()
    return body + b" " * padding  # JSON allows trailing whitespace: a big, valid body


def agent_memory(backend: LocalBackend) -> tuple[int, int]:
    """The agent's (resident, peak resident) memory in bytes, from /proc."""
    agent = running_agent(paths_for(backend.profile))
    assert agent is not None
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{agent['pid']}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def test_a_body_without_content_type_is_answered_as_the_replica_answers_it(
    serving: LocalBackend, digits_store: DigitsStore
) -> None:
    body = predict_body(digits_store)
    path = f"/v1/models/{NAME}:predict"
    ((_pod, replica),) = serving.endpoints("default", NAME)
    direct = post(replica, path, body, {})
    through_gateway = post(serving.gateway_url(), f"/models/{NAME}{path}", body, {})
    assert direct[0] == 200, direct
    assert through_gateway == direct
    assert len(json.loads(through_gateway[1])["predictions"]) == 2


def test_a_body_within_the_predictors_limit_is_forwarded_and_answered(
    serving: LocalBackend, digits_store: DigitsStore
) -> None:
    small = predict_body(digits_store)
    body = predict_body(digits_store, padding=PREDICTORS_LIMIT - len(small))
    assert len(body) == PREDICTORS_LIMIT
    status, answer = post(
        serving.gateway_url(),
        f"/models/{NAME}/v1/models/{NAME}:predict",
        body,
        {"Content-Type": "application/json"},
    )
    assert status == 200, answer[:300]
    assert len(json.loads(answer)["predictions"]) == 2


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reader = sock.makefile("rb")
    status_line = reader.readline().decode()
    headers: dict[str, str] = {}
    while (line := reader.readline().decode().strip()) != "":
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def test_a_declared_body_over_the_limit_gets_413_json_before_the_rest_is_sent(
    serving: LocalBackend,
) -> None:
    """60 MiB declared, 1 MiB sent: the answer comes without the other 59 (an agent that
    read the whole body would wait for them, and this test would hang until its guard)."""
    with socket.create_connection(host_port(serving.gateway_url()), SOCKET_TIMEOUT) as sock:
        sock.sendall(
            (
                f"POST /models/{NAME}/v1/models/{NAME}:predict HTTP/1.1\r\n"
                "Host: localhost\r\nContent-Type: application/json\r\n"
                f"Content-Length: {60 * MIB}\r\n\r\n"
            ).encode()
            + b" " * MIB
        )
        status, headers, body = read_answer(sock)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert f"limit of {PREDICTORS_LIMIT} bytes" in json.loads(body)["error"]


def test_chunked_bodies_over_the_limit_get_413_and_the_agent_holds_no_more_than_the_limit(
    serving: LocalBackend,
) -> None:
    """Three clients at once stream 60 MiB each without a declared length; each gets 413 JSON
    and the agent's peak memory grows by far less than the 180 MiB they sent (it read each up
    to the predictors' limit and no further)."""
    resident_before, _ = agent_memory(serving)
    answers: list[tuple[int, bytes]] = []

    def stream_60_mib() -> None:
        with socket.create_connection(host_port(serving.gateway_url()), SOCKET_TIMEOUT) as sock:
            sock.sendall(
                (
                    f"POST /models/{NAME}/v1/models/{NAME}:predict HTTP/1.1\r\n"
                    "Host: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                ).encode()
            )
            chunk = b"%x\r\n%s\r\n" % (MIB, b" " * MIB)
            try:
                for _ in range(60):
                    sock.sendall(chunk)
                sock.sendall(b"0\r\n\r\n")
            except OSError:  # the gateway answered and stopped reading: what it may do
                pass
            status, _headers, body = read_answer(sock)
            answers.append((status, body))

    clients = [threading.Thread(target=stream_60_mib) for _ in range(3)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    assert [status for status, _ in answers] == [413, 413, 413]
    for _, body in answers:
        assert f"limit of {PREDICTORS_LIMIT} bytes" in json.loads(body)["error"]
    _, peak_after = agent_memory(serving)
    # Three bodies held whole would be 180 MiB and more; three limits 48 MiB.
    assert peak_after - resident_before < 120 * MIB
