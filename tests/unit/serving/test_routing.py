"""Every path of the predictor's API resolves to its endpoint, model and version."""

from __future__ import annotations

import pytest

from serving.routing import Endpoint, Route, UnknownVerb, resolve


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/health/live", Route(Endpoint.LIVE)),
        ("/v2/health/ready", Route(Endpoint.READY)),
        ("/v2", Route(Endpoint.SERVER_METADATA)),
        ("/metrics", Route(Endpoint.METRICS)),
        ("/v2/models/digits", Route(Endpoint.V2_MODEL_METADATA, "digits")),
        ("/v2/models/digits/ready", Route(Endpoint.V2_MODEL_READY, "digits")),
        ("/v2/models/digits/infer", Route(Endpoint.V2_INFER, "digits")),
        ("/v2/models/digits/versions/3", Route(Endpoint.V2_MODEL_METADATA, "digits", "3")),
        ("/v2/models/digits/versions/3/ready", Route(Endpoint.V2_MODEL_READY, "digits", "3")),
        ("/v2/models/digits/versions/3/infer", Route(Endpoint.V2_INFER, "digits", "3")),
        ("/v1/models/digits", Route(Endpoint.V1_STATUS, "digits")),
        ("/v1/models/digits/metadata", Route(Endpoint.V1_METADATA, "digits")),
        ("/v1/models/digits:predict", Route(Endpoint.V1_PREDICT, "digits")),
        ("/v1/models/digits/versions/2", Route(Endpoint.V1_STATUS, "digits", "2")),
        ("/v1/models/digits/versions/2:predict", Route(Endpoint.V1_PREDICT, "digits", "2")),
        ("/v1/models/digits/versions/2/metadata", Route(Endpoint.V1_METADATA, "digits", "2")),
        ("/v1/models/digits:classify", UnknownVerb("classify")),
        ("/v2/models/digits/explain", None),
        ("/v2/models//infer", None),
        ("/v3", None),
        ("/", Route(Endpoint.ALIVE)),
        ("//", None),
    ],
)
def test_paths_resolve_to_their_endpoint(path: str, expected: object) -> None:
    assert resolve(path) == expected


def test_predictions_are_posted_and_everything_else_is_read() -> None:
    posted = {e for e in Endpoint if e.methods == ("POST",)}
    assert posted == {Endpoint.V1_PREDICT, Endpoint.V2_INFER}
    assert all(e.methods == ("GET",) for e in set(Endpoint) - posted)
