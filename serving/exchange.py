"""What the predictor's handlers and its HTTP transports share, and nothing of either transport.

The handlers (``serving.app``) see a request as ``HttpRequest`` and answer an ``HttpResponse``;
a transport (``serving.transport_aiohttp``, the default, or ``serving.http11``, the lean
httptools server) turns bytes into the one and the other into bytes. ``HttpTransport`` is what
``serving.server`` needs of a transport to listen, drain and shut down.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol

log = logging.getLogger("serving.http")

# What a client may send, aiohttp's defaults (aiohttp.web_protocol.RequestHandler: max_line_size
# 8190, max_field_size 8190, max_headers 128), so both transports refuse the same requests.
# (aiohttp answers all three with 400; the httptools transport with 414 and 431.)
MAX_REQUEST_LINE_BYTES = 8190  # method, target and version (the target alone in aiohttp)
MAX_FIELD_BYTES = 8190  # one header field, name and value together (as aiohttp's C parser)
MAX_HEADER_FIELDS = 128
INTERNAL_ERROR = "internal error; see the predictor's log"
# At shutdown an idle connection is closed once its client has been silent this long: one that
# was just accepted or just answered is most likely sending a request right now.
QUIET_BEFORE_CLOSE_SECONDS = 1.0
# Between refusing new handshakes and closing the listener: handshakes already under way
# complete and are accepted (and answered) instead of being reset in the accept queue.
HANDSHAKE_SETTLE_SECONDS = 0.1
# What may never appear in a header value we send (CR and LF would end the field and start
# another: header injection), and what a header name is made of (RFC 9110 token).
UNSAFE_HEADER_VALUE = re.compile(r"[\r\n\x00]")
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def unsafe_header(name: str, value: str) -> str | None:
    """What is wrong with sending this header field, or None."""
    if HEADER_NAME.fullmatch(name) is None:
        return f"not a header name: {name!r}"
    if UNSAFE_HEADER_VALUE.search(value) is not None:
        return f"the value of the {name!r} header holds CR, LF or NUL: {value!r}"
    return None


class HttpRequest:
    """One parsed request. ``headers`` is looked up by lower-case name (a transport may hand
    over a case-insensitive mapping of its own); repeated headers may be comma-joined."""

    __slots__ = ("body", "body_exceeded", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> None:
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


class HttpTransport(Protocol):
    """An HTTP server carrying the handlers: what ``serving.server`` drives."""

    async def start(self, host: str, port: int, *, backlog: int = 2048) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        ...

    def stop_keep_alive(self) -> None:
        """From now on every answer closes its connection (the drain before a shutdown)."""
        ...

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), close."""
        ...


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


def refuse_new_handshakes(listeners: Iterable[socket.socket]) -> bool:
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
