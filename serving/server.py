"""The predictor process: listen at once, load in the background, drain on SIGTERM.

The HTTP transport is aiohttp's own server by default, or the lean httptools one
(``--http-server``); both carry the same handlers (``serving.app``) and drain the same way.
The socket opens before the model loads so liveness answers from the first second while
readiness waits for fetch, verify, load and warm-up. On SIGTERM (or Ctrl-C) the predictor turns
not-ready, keeps serving for the drain window so load balancers can take it out of rotation
(every answer then closes its connection, so keep-alive clients move on), then stops accepting,
lets in-flight requests finish, and exits 0. A second signal cuts the
drain window short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from serving.app import PredictorHttp, error_response
from serving.config import PredictorConfig
from serving.exchange import ErrorResponder, Handler, HttpTransport
from serving.metrics import PredictorMetrics
from serving.served_model import ServedModel

log = logging.getLogger("serving")

# Time given to in-flight requests after the listener closes.
SHUTDOWN_GRACE_SECONDS = 30.0


async def serve(config: PredictorConfig) -> int:
    metrics = PredictorMetrics()
    served = ServedModel(config, metrics)
    http = PredictorHttp(served, metrics, config.max_body_bytes)
    server = make_transport(
        config.http_server, http.handle, error_response, max_body_bytes=config.max_body_bytes
    )
    port = await server.start(config.host, config.port, backlog=2048)
    log.info("listening on http://%s:%d (%s)", config.host, port, config.http_server)

    stop_requested = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        log.info("received %s", signal.Signals(signum).name)
        stop_requested.set()
        if signals_seen > 1:
            drain_cut_short.set()

    drain_cut_short = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    loading = asyncio.create_task(served.load(), name="load-model")
    await stop_requested.wait()

    served.begin_drain()
    # Clients are told to leave (Connection: close on every answer) while the predictor still
    # serves them, so none is left on an idle connection when the listener closes.
    server.stop_keep_alive()
    log.info("draining: not ready, still serving for %.1f s", config.drain_seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drain_cut_short.wait(), config.drain_seconds)
    log.info("closing the listener; waiting for in-flight requests")
    await server.shutdown(SHUTDOWN_GRACE_SECONDS)
    loading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loading
    await served.close()
    http.close()
    log.info("stopped")
    return 0


def make_transport(
    name: str, handler: Handler, error_response: ErrorResponder, *, max_body_bytes: int
) -> HttpTransport:
    """The HTTP server ``name`` (``serving.config.HTTP_SERVER_CHOICES``) over ``handler``.
    Imported here so a predictor loads only the transport it runs."""
    if name == "aiohttp":
        from serving.transport_aiohttp import AiohttpServer

        return AiohttpServer(handler, error_response, max_body_bytes=max_body_bytes)
    if name == "httptools":
        from serving.http11 import HttpServer

        return HttpServer(handler, error_response, max_body_bytes=max_body_bytes)
    raise ValueError(f"unknown HTTP server {name!r}; choose aiohttp or httptools")
