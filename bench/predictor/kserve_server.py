"""KServe's Python ModelServer serving the same LiteRT model (runs in its own virtualenv).

The baseline the issue names: one worker, its logging turned down, a small ``kserve.Model``
doing what our predictor does on the LiteRT int8 path (V1 ``instances`` in, ``predictions`` out).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from kserve import Model, ModelServer


class LiteRTModel(Model):  # type: ignore[misc]
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.ready = False

    def load(self) -> bool:
        self.interpreter = Interpreter(model_path=self.path, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.ready = True
        return True

    def predict(self, payload: dict[str, Any], headers: Any = None, **kwargs: Any) -> Any:
        instances = np.asarray(payload["instances"], dtype=np.float32)
        rows = []
        for instance in instances:
            self.interpreter.set_tensor(self.input_index, instance[np.newaxis])
            self.interpreter.invoke()
            rows.append(self.interpreter.get_tensor(self.output_index)[0].tolist())
        return {"predictions": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-path", required=True)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    model = LiteRTModel("digits", args.model_path)
    model.load()
    ModelServer(
        http_port=args.port,
        workers=1,
        enable_grpc=False,
        enable_docs_url=False,
        enable_latency_logging=False,
        access_log_format=None,
    ).start([model])


if __name__ == "__main__":
    main()
