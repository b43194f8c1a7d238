"""The predictor's HTTP/1.1 server, spoken to over real sockets: keep-alive, pipelining in
order, chunked bodies, the body limit before the body is read, 100-continue, malformed requests,
and a shutdown that lets in-flight requests finish."""

from __future__ import annotations

import asyncio

import pytest

from serving.http11 import (
    FEED_SLICE_BYTES,
    MAX_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE_BYTES,
    HttpRequest,
    HttpResponse,
    HttpServer,
)

LIMIT = 1024


def error(status: int, message: str) -> HttpResponse:
    return HttpResponse(b'{"error":"%s"}' % message.encode(), status)


async def handler(request: HttpRequest) -> HttpResponse:
    if request.body_exceeded:
        return error(413, "too large")
    if request.path == "/slow":
        await asyncio.sleep(0.2)
    return HttpResponse(
        b"%s %s %d" % (request.method.encode(), request.path.encode(), len(request.body))
    )


async def exchange(port: int, raw: bytes, responses: int = 1) -> list[tuple[int, bytes, str]]:
    """Send raw bytes, read ``responses`` answers: (status, body, headers text)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answers = []
    for _ in range(responses):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status = int(head.split(" ", 2)[1])
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        answers.append((status, await reader.readexactly(length), head))
    writer.close()
    return answers


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_keep_alive_answers_pipelined_requests_in_order() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        raw = (
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /last?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = await exchange(port, raw, 3)
        assert [body for _, body, _ in answers] == [b"GET /slow 0", b"POST /fast 3", b"GET /last 0"]
        assert all("connection: close" not in head.lower() for _, _, head in answers)
        await http.shutdown(1.0)

    run(scenario())


def test_chunked_bodies_are_joined_and_percent_paths_decoded() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        raw = (
            b"POST /v1/models/a%20b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        ((status, body, _),) = await exchange(port, raw)
        assert (status, body) == (200, b"POST /v1/models/a b 5")
        await http.shutdown(1.0)

    run(scenario())


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent_and_closes() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        raw = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
        ((status, _, head),) = await exchange(port, raw)
        assert status == 413
        assert "connection: close" in head.lower()
        await http.shutdown(1.0)

    run(scenario())


def test_a_chunked_body_over_the_limit_gets_413() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        chunk = b"%x\r\n%s\r\n" % (600, b"a" * 600)
        raw = (
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk * 2
            + b"0\r\n\r\n"
        )
        ((status, _, _),) = await exchange(port, raw)
        assert status == 413
        await http.shutdown(1.0)

    run(scenario())


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_malformed_requests_get_400_and_http10_closes() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        ((status, body, _),) = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
        assert status == 400
        assert b"malformed" in body
        ((status, _, head),) = await exchange(port, b"GET /x HTTP/1.0\r\n\r\n")
        assert status == 200
        assert "connection: close" in head.lower()
        await http.shutdown(1.0)

    run(scenario())


def test_a_malformed_request_is_answered_after_the_good_ones_before_it_then_closes() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"NOT HTTP AT ALL\r\n\r\n"
        )
        everything = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        heads = everything.split(b"HTTP/1.1 ")[1:]
        assert [head.split(b" ", 1)[0] for head in heads] == [b"200", b"200", b"400"]
        assert heads[0].endswith(b"GET /one 0")
        assert heads[1].endswith(b"GET /slow 0")
        assert b"malformed" in heads[2]
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_many_connections_sending_at_once_each_get_their_own_answers() -> None:
    def synchronous(request: HttpRequest) -> HttpResponse:
        return HttpResponse(request.body[::-1])

    async def scenario() -> None:
        http = HttpServer(synchronous, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)

        async def one(number: int) -> bytes:
            body = b"request-%03d" % number
            raw = b"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            ((status, answer, _),) = await exchange(port, raw)
            assert status == 200
            return answer

        answers = await asyncio.gather(*(one(n) for n in range(64)))
        assert answers == [(b"request-%03d" % n)[::-1] for n in range(64)]
        await http.shutdown(1.0)

    run(scenario())


def test_a_request_refused_from_its_headers_is_answered_after_the_one_before_it() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
        )
        everything = await asyncio.wait_for(reader.read(), 5)
        first, refused = everything.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200")
        assert b"connection: close" not in first.lower()
        assert refused.startswith(b"413")
        assert b"connection: close" in refused.lower()
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_100_continue_follows_the_answers_to_earlier_pipelined_requests() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"GET /slow 0"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hi")
        assert (await reader.readuntil(b"POST /up 2")).startswith(b"HTTP/1.1 200")
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_an_answer_that_cannot_be_encoded_is_a_500_and_other_connections_are_answered() -> None:
    def synchronous(request: HttpRequest) -> HttpResponse:
        if request.path == "/bad":
            return HttpResponse(b"x", headers={"X-Model": "snow\u2603man"})
        return HttpResponse(b"fine")

    async def scenario() -> None:
        http = HttpServer(synchronous, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        paths = [b"/bad", *(b"/good%d" % n for n in range(5))]
        answers = await asyncio.gather(
            *(exchange(port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path) for path in paths)
        )
        assert [status for ((status, _, _),) in answers] == [500, 200, 200, 200, 200, 200]
        await http.shutdown(1.0)

    run(scenario())


def test_shutdown_answers_every_request_already_received_and_closes_after_the_last() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        await writer.drain()
        await asyncio.sleep(0.05)  # all three received; the first is being answered
        await http.shutdown(5.0)
        everything = await asyncio.wait_for(reader.read(), 5)
        answers = everything.split(b"HTTP/1.1 ")[1:]
        assert [a.startswith(b"200") for a in answers] == [True, True, True]
        assert [b"connection: close" in a.lower() for a in answers] == [False, False, True]
        writer.close()

    run(scenario())


def test_a_client_silent_partway_through_a_request_gets_408_and_is_closed() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT, keepalive_seconds=0.3)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
        everything = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        assert everything.startswith(b"HTTP/1.1 408")
        assert b"connection: close" in everything.lower()
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_shutdown_finishes_in_flight_requests_and_closes_idle_connections() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        idle_reader, _ = await asyncio.open_connection("127.0.0.1", port)
        in_flight = asyncio.create_task(exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
        await asyncio.sleep(0.05)
        await http.shutdown(5.0)
        ((status, body, head),) = await in_flight
        assert (status, body) == (200, b"GET /slow 0")
        assert "connection: close" in head.lower()
        assert await idle_reader.read() == b""  # closed by the server
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    run(scenario())


def test_a_client_that_half_closes_after_its_request_gets_its_answer_then_a_close() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write_eof()  # the answer is still being made when the client's FIN arrives
        everything = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        assert everything.startswith(b"HTTP/1.1 200")
        assert everything.endswith(b"GET /slow 0")
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /x HTTP/1.1\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        (b"GET /x HTTP/1.0\r\n\r\n", 200),
    ],
    ids=["no-host", "two-hosts", "one-host", "http10-without-host"],
)
def test_an_http11_request_needs_exactly_one_host(raw: bytes, status: int) -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        ((answered, body, _),) = await exchange(port, raw)
        assert answered == status
        if status == 400:
            assert b"Host" in body
        await http.shutdown(1.0)

    run(scenario())


def test_after_stop_keep_alive_every_answer_closes_its_connection() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        ((_, _, head),) = await exchange(port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert "connection: close" not in head.lower()
        http.stop_keep_alive()
        ((status, _, head),) = await exchange(port, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        assert "connection: close" in head.lower()
        await http.shutdown(1.0)

    run(scenario())


def test_a_refusal_reaches_a_client_still_sending_its_body_without_a_reset() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT * 64))
        await asyncio.sleep(0.05)  # the 413 is on its way while the body follows
        writer.write(b"a" * (LIMIT * 64))
        # Closing with the body unread would reset the connection and could destroy the 413.
        everything = await asyncio.wait_for(reader.read(), 5)
        assert everything.startswith(b"HTTP/1.1 413")
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


# -- limits on what a client sends (aiohttp's) and on what we send -------------------------------


def target_of_line(length: int, method: bytes = b"GET") -> bytes:
    """A target that makes ``<method> <target> HTTP/1.1`` exactly ``length`` bytes long."""
    return b"/" + b"a" * (length - len(method) - len(b"  HTTP/1.1") - 1)


@pytest.mark.parametrize(
    ("line_bytes", "status"),
    [(MAX_REQUEST_LINE_BYTES, 200), (MAX_REQUEST_LINE_BYTES + 1, 414)],
    ids=["at-the-limit", "one-byte-over"],
)
def test_a_request_line_over_the_limit_is_414_and_closed(line_bytes: int, status: int) -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        raw = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target_of_line(line_bytes)
        ((answered, _, head),) = await exchange(port, raw)
        assert answered == status
        assert ("connection: close" in head.lower()) == (status != 200)
        await http.shutdown(1.0)

    run(scenario())


@pytest.mark.parametrize(
    ("field_bytes", "count", "status"),
    [
        (MAX_FIELD_BYTES, 1, 200),
        (MAX_FIELD_BYTES + 1, 1, 431),
        (10, MAX_HEADER_FIELDS, 200),
        (10, MAX_HEADER_FIELDS + 1, 431),
    ],
    ids=["field-at-the-limit", "field-one-byte-over", "fields-at-the-limit", "one-field-too-many"],
)
def test_a_header_field_too_long_or_one_too_many_is_431_and_closed(
    field_bytes: int, count: int, status: int
) -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        # Host is one of the fields; the others are X-NNNN: value, name and value field_bytes.
        fields = [b"Host: x"] + [
            b"X-%04d: %s" % (n, b"v" * (field_bytes - 6)) for n in range(count - 1)
        ]
        if count == 1:
            fields.append(b"X-Long: %s" % (b"v" * (field_bytes - 6)))
        raw = b"GET /x HTTP/1.1\r\n" + b"\r\n".join(fields) + b"\r\n\r\n"
        ((answered, body, head),) = await exchange(port, raw)
        assert answered == status, body
        assert ("connection: close" in head.lower()) == (status != 200)
        await http.shutdown(1.0)

    run(scenario())


@pytest.mark.parametrize("where", ["target", "header-value", "header-name", "trailer"])
def test_a_line_that_never_ends_is_refused_before_much_of_it_is_held(where: str) -> None:
    """Sent a slice at a time and never finished: the refusal comes after a few slices, not
    after the client stops (httptools would hold the whole header field until it ends)."""
    starts = {
        "target": b"GET /",
        "header-value": b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ",
        "header-name": b"GET /x HTTP/1.1\r\nHost: x\r\nX-",
        "trailer": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\na\r\n0\r\nX-Trailer: ",
    }
    expected = {"target": 414, "header-value": 431, "header-name": 431, "trailer": 400}

    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(starts[where])
        sent = 0
        answer = asyncio.ensure_future(reader.read())  # until the server closes
        while not answer.done() and sent < 10_000_000:
            writer.write(b"a" * 4096)
            sent += 4096
            await asyncio.sleep(0.001)
        everything = await asyncio.wait_for(answer, 5)
        assert everything.startswith(b"HTTP/1.1 %d" % expected[where]), everything[:200]
        assert sent <= 64 * 1024
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_trailers_are_checked_but_never_become_headers() -> None:
    def headers_of(request: HttpRequest) -> HttpResponse:
        return HttpResponse(repr(sorted(request.headers)).encode())

    async def scenario() -> None:
        http = HttpServer(headers_of, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        raw = (
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\na\r\n0\r\nX-Trailer: t\r\nHost: elsewhere\r\n\r\n"
        )
        ((status, body, _),) = await exchange(port, raw)
        assert (status, body) == (200, b"['host', 'transfer-encoding']")
        await http.shutdown(1.0)

    run(scenario())


@pytest.mark.parametrize(
    "raw",
    [
        b"GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["absolute-form", "asterisk-form", "authority-form"],
)
def test_a_target_that_is_not_a_path_is_400(raw: bytes) -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        ((status, _, head),) = await exchange(port, raw)
        assert status == 400
        assert "connection: close" in head.lower()
        await http.shutdown(1.0)

    run(scenario())


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Model": "a\r\nSet-Cookie: stolen=1"},
        {"X-Model": "a\nSet-Cookie: stolen=1"},
        {"X-Model": "a\x00b"},
        {"X-Model\r\nSet-Cookie": "stolen=1"},
        {"X Model": "a"},
    ],
    ids=["crlf-in-value", "lf-in-value", "nul-in-value", "crlf-in-name", "space-in-name"],
)
def test_a_handler_can_never_inject_a_header(headers: dict[str, str]) -> None:
    def injecting(request: HttpRequest) -> HttpResponse:
        if request.path == "/bad":
            return HttpResponse(b"x", headers=headers)
        if request.path == "/bad-type":
            return HttpResponse(b"x", content_type="text/plain\r\nSet-Cookie: stolen=1")
        return HttpResponse(b"fine", headers={"Retry-After": "1"})

    async def scenario() -> None:
        http = HttpServer(injecting, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        for path in (b"/bad", b"/bad-type"):
            ((status, _, head),) = await exchange(
                port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
            )
            assert status == 500
            assert "stolen" not in head.lower()
        ((status, body, head),) = await exchange(port, b"GET /good HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (200, b"fine")
        assert "retry-after: 1\r\n" in head.lower()
        await http.shutdown(1.0)

    run(scenario())


def test_a_pipelining_flood_from_a_client_that_does_not_read_is_held_bounded_and_answered() -> None:
    """Thousands of requests at once, their answers unread: the server parses a slice at a time,
    stops reading while its write buffer is full, and answers every request in order once the
    client reads."""
    requests = 5000

    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(requests))
        writer.write(raw)
        await asyncio.sleep(0.5)  # the server reads, answers into its buffer, and stops
        (connection,) = http.connections
        assert len(connection.pending) <= FEED_SLICE_BYTES // 20
        held = connection._unparsed
        assert held is None or len(held) <= 256 * 1024
        transport = connection.transport
        assert transport is not None
        assert transport.get_write_buffer_size() <= 1024 * 1024
        answered = 0
        while answered < requests:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            assert body == b"GET /r%d 0" % answered
            answered += 1
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_a_client_sending_its_head_a_byte_at_a_time_is_cut_with_408() -> None:
    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT, head_timeout_seconds=0.5)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = asyncio.ensure_future(reader.read())  # until the server closes
        raw = b"GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000
        for byte in raw:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        everything = await asyncio.wait_for(answer, 5)
        assert everything.startswith(b"HTTP/1.1 408")
        # a quick request on a new connection is not cut
        ((status, _, _),) = await exchange(port, b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        writer.close()
        await http.shutdown(1.0)

    run(scenario())


def test_a_flood_sent_with_a_half_close_is_answered_whole_then_closed() -> None:
    """What was received while reading was paused is still owed its answers when the client
    has half-closed: every request is answered, then the connection closes."""
    requests = 3000

    async def scenario() -> None:
        http = HttpServer(handler, error, max_body_bytes=LIMIT)
        port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(requests)))
        writer.write_eof()
        everything = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        answers = everything.split(b"HTTP/1.1 ")[1:]
        assert len(answers) == requests
        assert all(a.endswith(b"GET /r%d 0" % n) for n, a in enumerate(answers))
        writer.close()
        await http.shutdown(1.0)

    run(scenario())
