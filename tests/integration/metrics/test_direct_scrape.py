"""Real predictors under real load, scraped directly: the numbers follow the traffic."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from console.metrics import MetricsCollector, static_source
from console.metrics.readings import DeploymentMetrics, Key
from tests.infra.k8s_fixtures import poll_until
from tests.integration.metrics.conftest import StartLoad
from tests.support.predictor import PredictorProcess

ALPHA: Key = ("models", "alpha")
BETA: Key = ("models", "beta")
WINDOW_S = 6.0


def collector_for(
    targets: list[tuple[Key, str, str]], *, timeout_s: float = 2.0
) -> MetricsCollector:
    source = static_source(lambda: targets, timeout_s=timeout_s)
    return MetricsCollector(source, WINDOW_S, interval_s=0.5)


@pytest.fixture
def running() -> Iterator[Callable[[MetricsCollector], MetricsCollector]]:
    collectors: list[MetricsCollector] = []

    def start(collector: MetricsCollector) -> MetricsCollector:
        collectors.append(collector.start())
        return collector

    yield start
    for collector in collectors:
        collector.stop()


def latest(collector: MetricsCollector, key: Key) -> DeploymentMetrics | None:
    return collector.snapshot().get(key)


def when(
    collector: MetricsCollector, key: Key, condition: Callable[[DeploymentMetrics], object]
) -> Callable[[], DeploymentMetrics | None]:
    """For poll_until: the deployment's latest metrics once ``condition`` holds."""

    def check() -> DeploymentMetrics | None:
        metrics = latest(collector, key)
        return metrics if metrics is not None and condition(metrics) else None

    return check


def test_req_s_and_latency_follow_real_load_and_return_to_idle(
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    running: Callable[[MetricsCollector], MetricsCollector],
) -> None:
    alpha = [serve(), serve()]  # one deployment, two pods
    beta = serve("--batch-timeout-ms", "8")  # waits for a batch: visibly slower
    targets = [(ALPHA, f"alpha-{i}", p.url) for i, p in enumerate(alpha)]
    targets.append((BETA, "beta-0", beta.url))
    collector = running(collector_for(targets))

    idle = poll_until("a first scrape", lambda: latest(collector, ALPHA))
    assert idle.pods == 2
    assert idle.pods_failed == 0
    assert idle.requests_per_s == 0
    assert idle.p99_ms is None
    assert idle.error_percent is None

    loads = [start_load(p, 15.0) for p in alpha] + [start_load(beta, 10.0)]
    # Wait for the window to hold load only, then compare with what the clients counted.
    poll_until(
        "a full window of load",
        when(collector, ALPHA, lambda m: m.span_s >= WINDOW_S - 1 and m.p99_ms),
    )
    collector.wait_for_refreshes(int(WINDOW_S / 0.5) + 1, timeout=60)
    sent_before = sum(load.count() for load in loads[:2])
    started = time.monotonic()
    collector.wait_for_refreshes(int(WINDOW_S / 0.5), timeout=60)
    client_rate = (sum(load.count() for load in loads[:2]) - sent_before) / (
        time.monotonic() - started
    )
    busy = collector.snapshot()
    a, b = busy[ALPHA], busy[BETA]
    assert a.requests_per_s == pytest.approx(client_rate, rel=0.3)
    assert a.error_percent == 0
    assert a.p50_ms is not None
    assert a.p90_ms is not None
    assert a.p99_ms is not None
    assert 0 < a.p50_ms <= a.p90_ms <= a.p99_ms
    assert a.numbers.batch_size == pytest.approx(1.0)  # one instance per request
    assert a.numbers.queue_depth == 0
    assert b.p50_ms is not None
    assert b.p50_ms > a.p50_ms
    fleet = collector.fleet()
    assert fleet is not None
    assert fleet.deployments == 2
    assert fleet.pods == 3
    assert fleet.requests_per_s == pytest.approx(a.requests_per_s + b.requests_per_s)
    assert fleet.p99_ms is not None
    assert fleet.p99_ms >= a.p99_ms
    history = collector.deployment_history(ALPHA)
    assert history[0].requests_per_s == 0
    assert history[-1].requests_per_s > 0

    for load in loads:
        load.stop()
    assert all(load.failed == 0 for load in loads)
    quiet = poll_until(
        "the window to pass without load",
        when(collector, ALPHA, lambda m: m.requests_per_s == 0),
        timeout=60,
    )
    assert quiet.p99_ms is None
    # The baseline for an SLO gate is the last window that saw traffic.
    baseline = collector.baseline(ALPHA)
    assert baseline is not None
    assert baseline.requests_per_s > 0


def test_client_errors_are_not_the_deployments_errors(
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    running: Callable[[MetricsCollector], MetricsCollector],
) -> None:
    predictor = serve()
    collector = running(collector_for([(ALPHA, "alpha-0", predictor.url)]))
    start_load(predictor, 10.0)
    for _ in range(20):
        assert predictor.post("/v1/models/digits:predict", {"instances": []}).status_code == 400

    measured = poll_until(
        "bad requests in the window",
        when(collector, ALPHA, lambda m: m.span_s > 1 and m.requests_per_s > 0),
    )
    assert measured.error_percent == 0  # a 4xx is the client's mistake, only 5xx counts


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung predictor)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_hung_or_dead_target_is_reported_and_does_not_hold_up_the_others(
    serve: Callable[..., PredictorProcess], start_load: StartLoad, silent_listener: str
) -> None:
    predictor = serve()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}"
    targets = [
        (ALPHA, "alpha-0", predictor.url),
        (ALPHA, "alpha-hung", silent_listener),
        (BETA, "beta-dead", refused),
    ]
    collector = collector_for(targets, timeout_s=0.5)
    try:
        start_load(predictor, 10.0)
        collector.refresh()
        time.sleep(1.0)
        collector.refresh()
        alpha, beta = collector.snapshot()[ALPHA], collector.snapshot()[BETA]
    finally:
        collector.stop()

    assert alpha.pods == 1
    assert alpha.pods_failed == 1
    assert alpha.requests_per_s > 0  # the live pod's numbers arrived despite its hung sibling
    assert alpha.problems == ("alpha-hung: " + f"{silent_listener}/metrics: timed out",)
    assert beta.pods == 0
    assert beta.pods_failed == 1
    assert beta.problems[0].startswith("beta-dead: ")
    assert "connection refused" in beta.problems[0]
