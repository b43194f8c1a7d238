"""The predictor's HTTP routes: Open Inference Protocol V2, TF Serving REST V1, health, metrics.

Each handler catches its own errors and answers JSON (no middleware: a middleware chain costs
more per request than the model does on the LiteRT path). Unknown paths and wrong methods get
JSON 404 and 405 from a catch-all route.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from serving import protocol_v1, protocol_v2
from serving.errors import (
    BadRequest,
    ModelNotFound,
    PayloadTooLarge,
    PredictorError,
    UnsupportedMediaType,
)
from serving.metrics import PredictorMetrics
from serving.served_model import Loaded, Phase, ServedModel

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_PLATFORMS = {"savedmodel": "tensorflow_savedmodel", "tflite": "tflite", "tflite-int8": "tflite"}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, option=_DUMP_OPTIONS),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"error": message}, status, headers)


class PredictorRoutes:
    def __init__(self, served: ServedModel, metrics: PredictorMetrics, max_body_bytes: int) -> None:
        self.served = served
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        get, post = "GET", "POST"
        routes: list[tuple[str, str, Handler]] = [
            (get, "/v2/health/live", self.live),
            (get, "/v2/health/ready", self.ready),
            (get, "/v2", self.server_metadata),
            (get, "/v2/models/{model}", self.v2_metadata),
            (get, "/v2/models/{model}/versions/{version}", self.v2_metadata),
            (get, "/v2/models/{model}/ready", self.v2_model_ready),
            (get, "/v2/models/{model}/versions/{version}/ready", self.v2_model_ready),
            (post, "/v2/models/{model}/infer", self.v2_infer),
            (post, "/v2/models/{model}/versions/{version}/infer", self.v2_infer),
            (get, "/v1/models/{model}/metadata", self.v1_metadata),
            (get, "/v1/models/{model}/versions/{version}/metadata", self.v1_metadata),
            ("*", "/v1/models/{target}", self.v1_model),
            ("*", "/v1/models/{model}/versions/{target}", self.v1_model),
            (get, "/metrics", self.prometheus),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._catch_all = app.router.add_route("*", "/{tail:.*}", self.not_routed).resource
        return app

    # -- health -------------------------------------------------------------------------------
    async def live(self, request: web.Request) -> web.Response:
        self.metrics.observe_request("health", 200)
        return json_response({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        served = self.served
        if served.ready:
            self.metrics.observe_request("health", 200)
            return json_response({"ready": True})
        self.metrics.observe_request("health", 503)
        return json_response(
            {"ready": False, "phase": served.phase.value, "reason": served.reason}, 503
        )

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": self.metrics.content_type}
        )

    # -- shared checks ------------------------------------------------------------------------
    def _model(self, name: str, version: str | None) -> Loaded:
        """The loaded model a request names (and the version, when it names one)."""
        served = self.served
        if served.name is not None and name != served.name:
            raise ModelNotFound(
                f"model {name!r} is not served here; this predictor serves {served.name!r}"
            )
        loaded = served.require_serving()
        if version is not None and version != str(loaded.manifest.version):
            raise ModelNotFound(
                f"version {version} of {name!r} is not served here; "
                f"this predictor serves version {loaded.manifest.version}"
            )
        return loaded

    def _named(self, request: web.Request) -> Loaded:
        info = request.match_info
        return self._model(info["model"], info.get("version"))

    async def _json_body(self, request: web.Request) -> Any:
        content_type = request.headers.get("Content-Type")
        if content_type is not None:
            mime = content_type.split(";", 1)[0].strip().lower()
            if mime != "application/json" and not mime.endswith("+json"):
                if "Inference-Header-Content-Length" in request.headers:
                    raise UnsupportedMediaType(
                        "binary tensor data is not supported; send JSON "
                        "(tritonclient: binary_data=False)"
                    )
                raise UnsupportedMediaType(
                    f"Content-Type {mime!r} is not supported; send application/json"
                )
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise PayloadTooLarge(
                f"request body of {length} bytes exceeds the limit of {self.max_body_bytes}"
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(
                f"request body exceeds the limit of {self.max_body_bytes} bytes"
            ) from None
        if not raw:
            raise BadRequest("empty request body; send a JSON object")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc}") from None

    # -- Open Inference Protocol V2 -----------------------------------------------------------
    async def server_metadata(self, request: web.Request) -> web.Response:
        return json_response(protocol_v2.server_metadata())

    async def v2_metadata(self, request: web.Request) -> web.Response:
        return await self._guard("meta", self._v2_metadata, request)

    async def _v2_metadata(self, request: web.Request) -> web.Response:
        loaded = self._named(request)
        return json_response(
            protocol_v2.model_metadata(
                str(self.served.name),
                loaded.manifest.version,
                _PLATFORMS[loaded.runtime.name],
                loaded.manifest.signature,
            )
        )

    async def v2_model_ready(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name != self.served.name:
            return _error_response(404, f"model {name!r} is not served here")
        ready = self.served.ready
        return json_response({"name": name, "ready": ready}, 200 if ready else 503)

    async def v2_infer(self, request: web.Request) -> web.Response:
        return await self._guard("v2", self._v2_infer, request, timed=True)

    async def _v2_infer(self, request: web.Request) -> web.Response:
        loaded = self._named(request)
        body = await self._json_body(request)
        signature = loaded.manifest.signature
        inputs, request_id, names = protocol_v2.parse_infer(body, signature)
        outputs = await self.served.predict(inputs)
        return json_response(
            protocol_v2.encode_infer(
                str(self.served.name),
                loaded.manifest.version,
                request_id,
                outputs,
                signature,
                names,
            )
        )

    # -- TensorFlow Serving REST V1 -----------------------------------------------------------
    async def v1_model(self, request: web.Request) -> web.Response:
        """``/v1/models/<m>[/versions/<v>]`` (status) and the same with ``:predict``."""
        info = request.match_info
        target, _, verb = info["target"].partition(":")
        model, version = (info["model"], target) if "model" in info else (target, None)
        if verb == "predict":
            if request.method != "POST":
                return _error_response(405, "use POST for :predict", {"Allow": "POST"})
            return await self._guard(
                "v1", lambda r: self._v1_predict(r, model, version), request, timed=True
            )
        if verb:
            return _error_response(404, f"unknown verb {verb!r}; TF Serving REST supports :predict")
        if request.method != "GET":
            return _error_response(405, f"use GET for {request.path}", {"Allow": "GET"})
        return await self._guard("meta", lambda r: self._v1_status(model), request)

    async def _v1_status(self, name: str) -> web.Response:
        if name != self.served.name:
            raise ModelNotFound(
                f"model {name!r} is not served here; this predictor serves {self.served.name!r}"
            )
        served = self.served
        version = served.loaded.manifest.version if served.loaded else served.config.version
        state = {
            Phase.READY: "AVAILABLE",
            Phase.FAILED: "END",
            Phase.DRAINING: "UNLOADING",
        }.get(served.phase, "LOADING")
        error = served.reason if served.phase is Phase.FAILED else ""
        return json_response(protocol_v1.model_status(version, state, error))

    async def v1_metadata(self, request: web.Request) -> web.Response:
        return await self._guard("meta", self._v1_metadata, request)

    async def _v1_metadata(self, request: web.Request) -> web.Response:
        loaded = self._named(request)
        return json_response(
            protocol_v1.model_metadata(
                str(self.served.name), loaded.manifest.version, loaded.manifest.signature
            )
        )

    async def _v1_predict(
        self, request: web.Request, model: str, version: str | None
    ) -> web.Response:
        loaded = self._model(model, version)
        body = await self._json_body(request)
        signature = loaded.manifest.signature
        inputs, rows = protocol_v1.parse_predict(body, signature)
        outputs = await self.served.predict(inputs)
        return json_response(protocol_v1.encode_predict(outputs, signature, rows))

    # -- errors -------------------------------------------------------------------------------
    async def _guard(
        self, protocol: str, handler: Handler, request: web.Request, *, timed: bool = False
    ) -> web.Response:
        """Run a handler, turning every failure into a JSON answer, and record the request."""
        started = time.perf_counter()
        try:
            response = await handler(request)
        except PredictorError as exc:
            response = _error_response(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            response = _error_response(500, "internal error; see the predictor's log")
        elapsed = time.perf_counter() - started if timed else None
        self.metrics.observe_request(protocol, response.status, elapsed)
        return response

    async def not_routed(self, request: web.Request) -> web.Response:
        """404 for an unknown path; 405 (with Allow) for a known path and the wrong method."""
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is not self._catch_all:
                _, methods = await resource.resolve(request)
                allowed |= methods
        allowed.discard("HEAD")
        self.metrics.observe_request("other", 405 if allowed else 404)
        if allowed:
            methods_text = ", ".join(sorted(allowed))
            return _error_response(
                405, f"use {methods_text} for {request.path}", {"Allow": methods_text}
            )
        return _error_response(404, f"no such endpoint: {request.path}")
