"""The predictor's HTTP handlers: Open Inference Protocol V2, TF Serving REST V1, health, metrics.

One entry point (``handle``) resolves the path (``serving.routing``), checks the method, runs
the endpoint and turns every failure into a JSON answer with the right status, recording each
request in the metrics. No middleware and no application router: see ``serving.routing``.

Small bodies (the latency path) are decoded and checked on the event loop. Large ones are
decoded on a worker thread, a slice at a time, so the loop keeps answering probes and small
requests meanwhile; the one step that still holds it is the JSON parse itself (orjson: ~20 ns a
byte, a third of a second at the 16 MiB default limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import orjson

from serving import precomputed, protocol_v1, protocol_v2
from serving.batching import Arrays
from serving.errors import (
    BadRequest,
    ModelNotFound,
    PayloadTooLarge,
    PredictorError,
    UnsupportedMediaType,
)
from serving.exchange import HttpRequest, HttpResponse
from serving.metrics import PredictorMetrics
from serving.precomputed import KeyRequest, KeysNotFound
from serving.routing import Endpoint, Route, UnknownVerb, resolve
from serving.served_model import Loaded, Phase, ServedModel

log = logging.getLogger(__name__)

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_JSON = "application/json"
_PLATFORMS = {"savedmodel": "tensorflow_savedmodel", "tflite": "tflite", "tflite-int8": "tflite"}
# Which requests feed which protocol label; only predictions are timed.
_PROTOCOL = {
    Endpoint.V1_PREDICT: "v1",
    Endpoint.V2_INFER: "v2",
    Endpoint.ALIVE: "health",
    Endpoint.LIVE: "health",
    Endpoint.READY: "health",
    Endpoint.METRICS: "metrics",
}
_TIMED = frozenset((Endpoint.V1_PREDICT, Endpoint.V2_INFER))

EndpointHandler = Callable[[HttpRequest, Route], Awaitable[HttpResponse]]
# Resolved paths are remembered (a predictor sees a handful); bounded against path scans.
_ROUTE_CACHE_SIZE = 64
# Bodies above this are decoded off the event loop. Inline, 64 KiB costs the loop ~2–4 ms; the
# hand-off to the thread ~0.1 ms. A single-instance request is well under 1 KiB.
LARGE_BODY_BYTES = 64 * 1024

_Parsed = TypeVar("_Parsed")


class _Dispatch(NamedTuple):
    route: Route
    handler: EndpointHandler
    methods: tuple[str, ...]
    protocol: str  # the metrics label
    timed: bool


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return HttpResponse(orjson.dumps(body, option=_DUMP_OPTIONS), status, _JSON, headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    return json_response({"error": message}, status, headers)


class PredictorHttp:
    def __init__(self, served: ServedModel, metrics: PredictorMetrics, max_body_bytes: int) -> None:
        self.served = served
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._handlers: dict[Endpoint, EndpointHandler] = {
            Endpoint.ALIVE: self.alive,
            Endpoint.LIVE: self.live,
            Endpoint.READY: self.ready,
            Endpoint.SERVER_METADATA: self.server_metadata,
            Endpoint.METRICS: self.prometheus,
            Endpoint.V2_MODEL_METADATA: self.v2_metadata,
            Endpoint.V2_MODEL_READY: self.v2_model_ready,
            Endpoint.V2_INFER: self.v2_infer,
            Endpoint.V1_STATUS: self.v1_status,
            Endpoint.V1_METADATA: self.v1_metadata,
            Endpoint.V1_PREDICT: self.v1_predict,
        }
        self._routes: dict[str, _Dispatch] = {}
        # One thread: large bodies are decoded one after another (memory, and the GIL).
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        dispatch = self._routes.get(request.path)
        if dispatch is None:
            route = resolve(request.path)
            if route is None:
                self.metrics.observe_request("other", 404)
                return error_response(404, f"no such endpoint: {request.path}")
            if isinstance(route, UnknownVerb):
                self.metrics.observe_request("other", 404)
                return error_response(
                    404, f"unknown verb {route.verb!r}; TF Serving REST has :predict"
                )
            endpoint = route.endpoint
            dispatch = _Dispatch(
                route,
                self._handlers[endpoint],
                endpoint.methods,
                _PROTOCOL.get(endpoint, "meta"),
                endpoint in _TIMED,
            )
            if len(self._routes) < _ROUTE_CACHE_SIZE:
                self._routes[request.path] = dispatch
        if request.method not in dispatch.methods:
            allowed = ", ".join(dispatch.methods)
            self.metrics.observe_request("other", 405)
            return error_response(405, f"use {allowed} for {request.path}", {"Allow": allowed})
        started = time.perf_counter()
        try:
            response = await dispatch.handler(request, dispatch.route)
        except KeysNotFound as exc:
            response = json_response({"error": exc.message, "missing_keys": exc.missing}, 404)
        except PredictorError as exc:
            response = error_response(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            response = error_response(500, "internal error; see the predictor's log")
        self.metrics.observe_request(
            dispatch.protocol,
            response.status,
            time.perf_counter() - started if dispatch.timed else None,
        )
        return response

    # -- health and metrics -------------------------------------------------------------------
    async def alive(self, request: HttpRequest, route: Route) -> HttpResponse:
        """``GET /`` as KServe's ModelServer answers it: its V1 REST client's liveness check."""
        return json_response({"status": "alive"})

    async def live(self, request: HttpRequest, route: Route) -> HttpResponse:
        return json_response({"live": True})

    async def ready(self, request: HttpRequest, route: Route) -> HttpResponse:
        served = self.served
        if served.ready:
            return json_response({"ready": True})
        return json_response(
            {"ready": False, "phase": served.phase.value, "reason": served.reason}, 503
        )

    async def prometheus(self, request: HttpRequest, route: Route) -> HttpResponse:
        return HttpResponse(self.metrics.exposition(), content_type=self.metrics.content_type)

    # -- shared checks ------------------------------------------------------------------------
    def _model(self, route: Route) -> Loaded:
        """The loaded model a route names (and its version, when it names one)."""
        served = self.served
        if served.name is not None and route.model != served.name:
            raise ModelNotFound(
                f"model {route.model!r} is not served here; this predictor serves {served.name!r}"
            )
        loaded = served.require_serving()
        self._check_version(route)
        return loaded

    def _check_version(self, route: Route) -> None:
        """A route naming a version this predictor does not serve is 404. While the version is
        not known yet (still resolving ``latest``) there is nothing to compare with."""
        if route.version is None:
            return
        served = self.served
        version = served.loaded.manifest.version if served.loaded else served.config.version
        if version is not None and route.version != str(version):
            raise ModelNotFound(
                f"version {route.version} of {route.model!r} is not served here; "
                f"this predictor serves version {version}"
            )

    async def _off_loop(
        self, parse: Callable[[HttpRequest, Loaded], _Parsed], request: HttpRequest, loaded: Loaded
    ) -> _Parsed:
        """``parse(request, loaded)`` on the decoder thread: the loop keeps serving meanwhile.
        (Small bodies are parsed inline by the caller: no coroutine on the latency path.)"""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoder, parse, request, loaded)

    def _json_body(self, request: HttpRequest) -> Any:
        content_type = request.headers.get("content-type")
        if content_type is not None:
            mime = content_type.split(";", 1)[0].strip().lower()
            if mime != _JSON and not mime.endswith("+json"):
                if "inference-header-content-length" in request.headers:
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
        if request.body_exceeded:  # chunked, no length given: the server stopped reading
            raise PayloadTooLarge(f"request body exceeds the limit of {self.max_body_bytes} bytes")
        raw = request.body
        if not raw:
            raise BadRequest("empty request body; send a JSON object")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc}") from None

    # -- Open Inference Protocol V2 -----------------------------------------------------------
    async def server_metadata(self, request: HttpRequest, route: Route) -> HttpResponse:
        return json_response(protocol_v2.server_metadata())

    async def v2_metadata(self, request: HttpRequest, route: Route) -> HttpResponse:
        loaded = self._model(route)
        return json_response(
            protocol_v2.model_metadata(
                str(self.served.name),
                loaded.manifest.version,
                _PLATFORMS[loaded.runtime.name],
                loaded.manifest.signature,
            )
        )

    async def v2_model_ready(self, request: HttpRequest, route: Route) -> HttpResponse:
        if route.model != self.served.name:
            raise ModelNotFound(f"model {route.model!r} is not served here")
        self._check_version(route)
        ready = self.served.ready
        return json_response({"name": route.model, "ready": ready}, 200 if ready else 503)

    async def v2_infer(self, request: HttpRequest, route: Route) -> HttpResponse:
        loaded = self._model(route)
        if len(request.body) <= LARGE_BODY_BYTES:
            keyed, tensors, request_id, names = self._parse_v2(request, loaded)
        else:
            keyed, tensors, request_id, names = await self._off_loop(
                self._parse_v2, request, loaded
            )
        if keyed is not None:
            outputs = await self._lookup(loaded, keyed, tensors)
        else:
            assert tensors is not None
            outputs = await self.served.predict(tensors)
        return json_response(
            protocol_v2.encode_infer(
                str(self.served.name),
                loaded.manifest.version,
                request_id,
                outputs,
                loaded.manifest.signature,
                names,
            )
        )

    def _parse_v2(
        self, request: HttpRequest, loaded: Loaded
    ) -> tuple[KeyRequest | None, Arrays | None, str | None, list[str]]:
        """The keys asked for (or None), the tensors, the request id and the outputs asked for."""
        body = self._json_body(request)
        signature = loaded.manifest.signature
        key_position = precomputed.v2_key_position(body)
        if key_position is None:
            inputs, request_id, names = protocol_v2.parse_infer(body, signature)
            return None, inputs, request_id, names
        keyed = precomputed.v2_key_request(body, key_position)
        if keyed.tensors is None:
            request_id, names = protocol_v2.parse_id_and_outputs(body, signature)
            return keyed, None, request_id, names
        tensors, request_id, names = protocol_v2.parse_infer(keyed.tensors, signature)
        return keyed, tensors, request_id, names

    # -- TensorFlow Serving REST V1 -----------------------------------------------------------
    async def v1_status(self, request: HttpRequest, route: Route) -> HttpResponse:
        served = self.served
        if route.model != served.name:
            raise ModelNotFound(
                f"model {route.model!r} is not served here; this predictor serves {served.name!r}"
            )
        self._check_version(route)
        version = served.loaded.manifest.version if served.loaded else served.config.version
        state = {
            Phase.READY: "AVAILABLE",
            Phase.FAILED: "END",
            Phase.DRAINING: "UNLOADING",
        }.get(served.phase, "LOADING")
        error = served.reason if served.phase is Phase.FAILED else ""
        return json_response(protocol_v1.model_status(version, state, error))

    async def v1_metadata(self, request: HttpRequest, route: Route) -> HttpResponse:
        loaded = self._model(route)
        return json_response(
            protocol_v1.model_metadata(
                str(self.served.name), loaded.manifest.version, loaded.manifest.signature
            )
        )

    async def v1_predict(self, request: HttpRequest, route: Route) -> HttpResponse:
        loaded = self._model(route)
        if len(request.body) <= LARGE_BODY_BYTES:
            keyed, tensors, rows = self._parse_v1(request, loaded)
        else:
            keyed, tensors, rows = await self._off_loop(self._parse_v1, request, loaded)
        if keyed is not None:
            outputs = await self._lookup(loaded, keyed, tensors)
        else:
            assert tensors is not None
            outputs = await self.served.predict(tensors)
        return json_response(protocol_v1.encode_predict(outputs, loaded.manifest.signature, rows))

    def _parse_v1(
        self, request: HttpRequest, loaded: Loaded
    ) -> tuple[KeyRequest | None, Arrays | None, bool]:
        """The keys asked for (or None), the tensors, and whether the request used rows."""
        body = self._json_body(request)
        signature = loaded.manifest.signature
        if type(body) is dict and "keys" in body:
            keyed, rows = precomputed.v1_key_request(body)
            tensors = None
            if keyed.tensors is not None:
                tensors = protocol_v1.parse_predict(keyed.tensors, signature)[0]
            return keyed, tensors, rows
        inputs, rows = protocol_v1.parse_predict(body, signature)
        return None, inputs, rows

    # -- precomputed tables -------------------------------------------------------------------
    async def _lookup(self, loaded: Loaded, keyed: KeyRequest, tensors: Arrays | None) -> Arrays:
        """Answer keys from the version's table; the model predicts the ones it lacks when the
        request sent their tensors (aligned with the keys), else they are 404."""
        table = loaded.table
        manifest = loaded.manifest
        if table is None:
            raise BadRequest(
                f"{manifest.model} version {manifest.version} carries no precomputed table: "
                "send tensors, or score the version first (python -m training.score)"
            )
        found = table.lookup(keyed.keys)
        misses = len(found.missing)
        if not misses:
            self.metrics.observe_precomputed(len(keyed.keys), 0)
            return table.rows(found.rows)
        if tensors is None:
            self.metrics.observe_precomputed(found.hits, misses)
            raise KeysNotFound(
                [keyed.keys[i] for i in found.missing], manifest.model, manifest.version
            )
        sizes = {len(a) for a in tensors.values()}
        if sizes != {len(keyed.keys)}:
            raise BadRequest(
                f"{len(keyed.keys)} keys but {', '.join(map(str, sorted(sizes)))} instances: "
                "send one instance per key, in the same order"
            )
        predicted = await self.served.predict({n: a[found.missing] for n, a in tensors.items()})
        self.metrics.observe_precomputed(found.hits, misses, misses)
        return precomputed.merge(table, found, predicted)
