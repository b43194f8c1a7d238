"""A real Prometheus server scraping real predictors gives the numbers the direct scrape gives.

Both sources see the same traffic over the same window; they differ only in when each sampled
the counters, so rates agree within two scrape intervals out of the window, and percentiles
(the same bucket arithmetic over nearly the same observations) agree closely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from console.metrics import (
    MetricsCollector,
    PrometheusSource,
    SourceError,
    histogram,
    static_source,
)
from console.metrics.readings import DeploymentMetrics, Key
from console.metrics.sources import Reading
from tests.infra.k8s_fixtures import poll_until
from tests.infra.prometheus import PrometheusServer, ScrapeTarget, require_prometheus
from tests.integration.metrics.conftest import StartLoad
from tests.support.predictor import PredictorProcess

ALPHA: Key = ("models", "alpha")
BETA: Key = ("models", "beta")
WINDOW_S = 10.0
SCRAPE_S = 1.0


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[list[ScrapeTarget]], PrometheusServer]]:
    require_prometheus()
    servers: list[PrometheusServer] = []

    def start(targets: list[ScrapeTarget]) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(servers)}", targets)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def host_port(url: str) -> str:
    return urlparse(url).netloc


def both_have_traffic(direct: MetricsCollector, prometheus: MetricsCollector) -> Callable[[], bool]:
    def check() -> bool:
        for collector in (direct, prometheus):
            snapshot = collector.snapshot()
            if not all(
                k in snapshot and snapshot[k].p99_ms and snapshot[k].requests_per_s
                for k in (ALPHA, BETA)
            ):
                return False
        return True

    return check


def close(a: float | None, b: float | None, rel: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b))


def test_prometheus_gives_the_direct_scrapes_numbers_for_the_same_traffic(
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    start_prometheus: Callable[[list[ScrapeTarget]], PrometheusServer],
) -> None:
    alpha = [serve(), serve()]
    beta = serve("--batch-timeout-ms", "8")
    pods = [(ALPHA, f"alpha-{i}", p) for i, p in enumerate(alpha)] + [(BETA, "beta-0", beta)]
    server = start_prometheus(
        [ScrapeTarget(k[0], k[1], pod, host_port(p.url)) for k, pod, p in pods]
    )
    poll_until("Prometheus scraping every predictor", lambda: server.targets_up() == 3)
    direct = MetricsCollector(
        static_source(lambda: [(k, pod, p.url) for k, pod, p in pods]),
        WINDOW_S,
        interval_s=SCRAPE_S,
    ).start()
    prometheus = MetricsCollector(PrometheusSource(server.url), WINDOW_S, interval_s=SCRAPE_S)
    prometheus.start()
    try:
        for p in alpha:
            start_load(p, 15.0)
        start_load(beta, 8.0)
        poll_until("both sources to see the load", both_have_traffic(direct, prometheus), 90)
        time.sleep(WINDOW_S + 2 * SCRAPE_S)  # a whole window of steady load in both

        # Compare refreshes taken at nearly the same moment; retry a few rounds so a scrape
        # that landed late on one side does not decide alone.
        def agreeing() -> tuple[DeploymentMetrics, DeploymentMetrics] | None:
            direct.wait_for_refreshes(1)
            prometheus.wait_for_refreshes(1)
            d, p = direct.snapshot(), prometheus.snapshot()
            tolerance = 2 * SCRAPE_S / WINDOW_S  # the samples each side may miss
            for key in (ALPHA, BETA):
                a, b = d[key], p[key]
                if not close(a.requests_per_s, b.requests_per_s, tolerance):
                    return None
                # The p99 of a 10 s window at 8-30 req/s rests on a handful of observations,
                # and the two windows' edges differ by a scrape: it may move further.
                for q, within in (("p50_ms", 0.15), ("p90_ms", 0.15), ("p99_ms", 0.4)):
                    if not close(getattr(a.numbers, q), getattr(b.numbers, q), within):
                        return None
            return d[BETA], p[BETA]

        found = poll_until("the two sources to agree", agreeing, timeout=60)
    finally:
        direct.stop()
        prometheus.stop()

    by_direct, by_prometheus = found
    assert by_prometheus.error_percent == by_direct.error_percent == 0
    assert by_prometheus.numbers.batch_size == pytest.approx(by_direct.numbers.batch_size, 0.2)
    assert by_prometheus.pods == 1
    fleet = prometheus.fleet()
    assert fleet is not None
    assert fleet.deployments == 2
    assert fleet.pods == 3


def test_one_query_answers_for_the_whole_fleet_as_promql_computes_it(
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
    start_prometheus: Callable[[list[ScrapeTarget]], PrometheusServer],
) -> None:
    predictor = serve()
    server = start_prometheus(
        [ScrapeTarget("models", "alpha", "alpha-0", host_port(predictor.url))]
    )
    poll_until("Prometheus scraping the predictor", lambda: server.targets_up() == 1)
    start_load(predictor, 20.0)
    source = PrometheusSource(server.url)
    promql = (
        "histogram_quantile(0.99, sum by (le) (rate("
        f"fleetdeck_predictor_request_duration_seconds_bucket[{WINDOW_S:.0f}s])))"
    )

    def both() -> tuple[Reading, float] | None:
        reading = source.read(None, WINDOW_S)
        rates = reading.rates.get(ALPHA)
        theirs = server.query(promql)
        if rates is None or histogram.total(rates.latency) <= 0 or not theirs:
            return None
        return reading, float(theirs[0]["value"][1])

    try:
        reading, theirs = poll_until("latency rates in Prometheus", both, timeout=60)
    finally:
        source.close()

    # Our arithmetic over the server's bucket rates equals its own histogram_quantile (the
    # two queries ran a moment apart, so allow for one more scrape in between).
    assert histogram.quantile(0.99, reading.rates[ALPHA].latency) == pytest.approx(theirs, rel=0.1)
    assert reading.pod_counts[ALPHA] == 1
    assert reading.rates[ALPHA].requests > 0


def test_an_unreachable_prometheus_is_one_clear_error() -> None:
    source = PrometheusSource("http://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(SourceError, match=r"Prometheus at http://127\.0\.0\.1:9 did not answer"):
        source.read(None, WINDOW_S)
