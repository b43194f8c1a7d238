"""The predictor's Prometheus metrics, in a registry of its own.

Label children on the hot path are created once and cached, so recording a request costs a
dictionary lookup and an observe.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "fleetdeck_predictor_"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
INFERENCE_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class PredictorMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        # The *_created series double the exposition for no use to a scraper of one process.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            PREFIX + "requests",
            "HTTP requests answered, by protocol and status code.",
            ["protocol", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds",
            "End-to-end request latency inside the predictor, by protocol.",
            ["protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            PREFIX + "inference_duration_seconds",
            "Time the model spent on one batch.",
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            PREFIX + "batch_size",
            "Instances per batch run by the model.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.instances = Counter(
            PREFIX + "instances",
            "Instances predicted.",
            registry=r,
        )
        self.queue_depth = Gauge(
            PREFIX + "queue_depth",
            "Instances waiting in the batching queue.",
            registry=r,
        )
        self.ready = Gauge(PREFIX + "ready", "1 when the model is loaded and warm.", registry=r)
        self.load_seconds = Gauge(
            PREFIX + "load_duration_seconds",
            "Seconds from process start to ready, by phase.",
            ["phase"],
            registry=r,
        )
        self.model_info = Info(PREFIX + "model", "The model this predictor serves.", registry=r)
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe_request(self, protocol: str, code: int, seconds: float | None = None) -> None:
        """Count a request; ``seconds`` (prediction requests only) feeds the latency histogram."""
        key = (protocol, code)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(protocol, str(code))
        counter.inc()
        if seconds is None:
            return
        histogram = self._latency_children.get(protocol)
        if histogram is None:
            histogram = self._latency_children[protocol] = self.request_seconds.labels(protocol)
        histogram.observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)
        self.instances.inc(size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
