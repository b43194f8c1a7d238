"""Live metrics of the fleet's predictors: req/s, error %, p50/p90/p99, batch size, queue.

Usage (the TUI, ``fleetdeck top`` and the batch engine all do this; no Textual here)::

    from console.metrics import MetricsCollector, collector_for

    collector = collector_for(profile, backend).start()   # refreshes every interval_s
    collector.set_wanted({("models", "digits")})            # only these (+ rollouts); None: all
    unsubscribe = collector.subscribe(lambda: app.call_from_thread(app.refresh_metrics))
    row = collector.snapshot()[("models", "digits")]        # DeploymentMetrics
    row.requests_per_s, row.error_percent, row.p50_ms, row.p90_ms, row.p99_ms
    row.numbers.batch_size, row.numbers.queue_depth, row.numbers.precomputed_hit_ratio
    row.pods, row.pods_failed, row.problems                 # which targets did not answer
    collector.fleet()                                       # FleetMetrics (summed histograms)
    collector.history(key)                                  # [DeploymentMetrics], oldest first
    collector.fleet_history()                               # [FleetMetrics] for the overview
    collector.get(key)                                      # one deployment, or None
    before = collector.baseline(key, before=wave_started)   # last window with traffic before a
                                                            # Unix time: the SLO gate's reference
    collector.wait_for_refreshes(2)                         # e.g. before taking baselines
    collector.error                                         # "" or why the source failed
    collector.stop()

Any source works the same: ``MetricsCollector(source, window_s, interval_s=...)`` with
``direct_source(backend)`` (``backend.endpoints(ns, name) -> [(pod, base_url)]``),
``pod_proxy_source(backend)`` (the API server's pod proxy), ``static_source(lambda: [...])``
or ``PrometheusSource(url)`` (one query for the whole fleet). ``collector.refresh()`` runs one
round synchronously (a CLI, a test). Values are None where there is nothing to measure (no
requests in the window): show "-", never 0 ms.
"""

from __future__ import annotations

from console.metrics.collector import MetricsCollector
from console.metrics.factory import collector_for, source_for
from console.metrics.histogram import quantile
from console.metrics.prometheus import PrometheusSource
from console.metrics.readings import (
    DeploymentMetrics,
    FleetMetrics,
    Key,
    LatestNumbers,
    WindowRates,
)
from console.metrics.sources import Source, SourceError
from console.metrics.targets import direct_source, pod_proxy_source, static_source

__all__ = [
    "DeploymentMetrics",
    "FleetMetrics",
    "Key",
    "LatestNumbers",
    "MetricsCollector",
    "PrometheusSource",
    "Source",
    "SourceError",
    "WindowRates",
    "collector_for",
    "direct_source",
    "pod_proxy_source",
    "quantile",
    "source_for",
    "static_source",
]
