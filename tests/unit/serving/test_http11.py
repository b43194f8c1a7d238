"""The predictor's HTTP/1.1 server, spoken to over real sockets: keep-alive, pipelining in
order, chunked bodies, the body limit before the body is read, 100-continue, malformed requests,
and a shutdown that lets in-flight requests finish."""

from __future__ import annotations

import asyncio

import pytest

from serving.http11 import HttpRequest, HttpResponse, HttpServer

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
