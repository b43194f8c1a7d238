"""The aiohttp ceiling for a real prediction: one route that parses the JSON, runs LiteRT int8
and encodes the answer. No validation, no metrics, no probes beyond readiness: what the
predictor's aiohttp transport would cost if it did nothing else."""

from __future__ import annotations

import argparse
import asyncio

import numpy as np
import orjson
import uvloop
from ai_edge_litert.interpreter import Interpreter
from aiohttp import web

from bench.predictor.ceiling import ready, serve_app


class MinimalPredictor:
    def __init__(self, model_path: str) -> None:
        self.interpreter = Interpreter(model_path=model_path, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]

    def answer(self, body: bytes) -> bytes:
        instances = np.asarray(orjson.loads(body)["instances"], dtype=np.float32)
        self.interpreter.set_tensor(self.input_index, instances)
        self.interpreter.invoke()
        scores = self.interpreter.get_tensor(self.output_index)
        return orjson.dumps({"predictions": scores}, option=orjson.OPT_SERIALIZE_NUMPY)

    async def predict(self, request: web.Request) -> web.Response:
        body = self.answer(await request.read())
        return web.Response(body=body, content_type="application/json")


def parse_args() -> argparse.Namespace:
    """``--port`` and ``--model-path``, as every baseline serving the LiteRT file takes them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-path", required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    predictor = MinimalPredictor(args.model_path)
    app = web.Application()
    app.router.add_post("/v1/models/digits:predict", predictor.predict)
    app.router.add_get("/v2/health/ready", ready)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_app(app, args.port))


if __name__ == "__main__":
    main()
