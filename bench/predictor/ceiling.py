"""The HTTP ceiling: aiohttp on the same event loop as the predictor, answering a constant JSON
body of the same size as a prediction. Whatever the predictor does beyond this is its cost."""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from aiohttp import web

BODY = b'{"predictions":[[0.9765625,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0078125,0.01171875]]}'


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.Response(body=b'{"ready":true}', content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/models/digits:predict", answer)
    app.router.add_get("/v2/health/ready", ready)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_app(app, args.port))


async def serve_app(app: web.Application, port: int) -> None:
    """Serve ``app`` the way the predictor does: one process, no access log, a deep backlog."""
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
