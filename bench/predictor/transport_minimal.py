"""The minimal predictor's one route (bench.predictor.minimal_aiohttp) behind the predictor's own
aiohttp transport (serving.transport_aiohttp) instead of an aiohttp Application: what the
transport costs on its own, apart from the handlers' validation and metrics."""

from __future__ import annotations

import asyncio

import uvloop

from bench.predictor.minimal_aiohttp import MinimalPredictor, parse_args
from serving.app import error_response
from serving.exchange import HttpRequest, HttpResponse
from serving.transport_aiohttp import AiohttpServer

READY = HttpResponse(b'{"ready":true}')


def main() -> None:
    args = parse_args()
    predictor = MinimalPredictor(args.model_path)

    def handle(request: HttpRequest) -> HttpResponse:
        if request.method == "GET":  # the readiness the bench polls
            return READY
        return HttpResponse(predictor.answer(request.body))

    async def serve() -> None:
        server = AiohttpServer(handle, error_response, max_body_bytes=1 << 20)
        await server.start("127.0.0.1", args.port)
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
