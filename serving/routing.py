"""Path resolution for the predictor's small, fixed API.

The API is a dozen fixed shapes, so resolving it is a dictionary lookup and one split: an
application router with middleware cost about 9 µs a request on aiohttp, a quarter of the LiteRT
path's budget (see ``serving.http11`` for the server itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Endpoint(Enum):
    ALIVE = "alive"  # GET /: KServe's ModelServer liveness, asked by its V1 REST client
    LIVE = "live"
    READY = "ready"
    SERVER_METADATA = "server-metadata"
    METRICS = "metrics"
    V2_MODEL_METADATA = "v2-model-metadata"
    V2_MODEL_READY = "v2-model-ready"
    V2_INFER = "v2-infer"
    V1_STATUS = "v1-status"
    V1_METADATA = "v1-metadata"
    V1_PREDICT = "v1-predict"

    @property
    def methods(self) -> tuple[str, ...]:
        return ("POST",) if self in (Endpoint.V2_INFER, Endpoint.V1_PREDICT) else ("GET",)


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    model: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class UnknownVerb:
    verb: str


_EXACT = {
    "/": Route(Endpoint.ALIVE),
    "/v2/health/live": Route(Endpoint.LIVE),
    "/v2/health/ready": Route(Endpoint.READY),
    "/v2": Route(Endpoint.SERVER_METADATA),
    "/metrics": Route(Endpoint.METRICS),
}
_V2_TAIL = {
    (): Endpoint.V2_MODEL_METADATA,
    ("ready",): Endpoint.V2_MODEL_READY,
    ("infer",): Endpoint.V2_INFER,
}
_V1_TAIL = {(): Endpoint.V1_STATUS, ("metadata",): Endpoint.V1_METADATA}


def resolve(path: str) -> Route | UnknownVerb | None:
    """The route a path names, an unknown ``:verb`` on a V1 model path, or None."""
    route = _EXACT.get(path)
    if route is not None:
        return route
    if path.startswith("/v2/models/"):
        return _model_route(path[len("/v2/models/") :], _V2_TAIL)
    if path.startswith("/v1/models/"):
        rest = path[len("/v1/models/") :]
        head, colon, verb = rest.rpartition(":")
        if colon and "/" not in verb:
            if verb != "predict":
                return UnknownVerb(verb)
            found = _model_route(head, {(): Endpoint.V1_PREDICT})
            return found
        return _model_route(rest, _V1_TAIL)
    return None


def _model_route(rest: str, tails: dict[tuple[str, ...], Endpoint]) -> Route | None:
    parts = rest.split("/")
    model, version, tail = parts[0], None, tuple(parts[1:])
    if len(parts) >= 3 and parts[1] == "versions":
        version, tail = parts[2], tuple(parts[3:])
    if not model or version == "":
        return None
    endpoint = tails.get(tail)
    return Route(endpoint, model, version) if endpoint is not None else None
