"""The source and collector a profile asks for (``[metrics]`` in the profile)."""

from __future__ import annotations

from typing import Any

from console.metrics.collector import MetricsCollector
from console.metrics.prometheus import PrometheusSource
from console.metrics.sources import Source
from console.metrics.targets import direct_source, pod_proxy_source
from console.profile import Profile


def source_for(profile: Profile, backend: Any) -> Source:
    settings = profile.metrics
    kind = settings.resolved_source(profile.backend)
    if kind == "prometheus":
        assert settings.prometheus_url is not None, "the profile checks this"
        return PrometheusSource(
            settings.prometheus_url,
            namespace_label=settings.namespace_label,
            deployment_label=settings.deployment_label,
            timeout_s=max(settings.scrape_timeout_seconds, 5.0),
        )
    concurrency, timeout_s = settings.scrape_concurrency, settings.scrape_timeout_seconds
    if kind == "pod-proxy":
        return pod_proxy_source(backend, concurrency=concurrency, timeout_s=timeout_s)
    return direct_source(backend, concurrency=concurrency, timeout_s=timeout_s)


def collector_for(profile: Profile, backend: Any) -> MetricsCollector:
    """A collector for the profile's source, not started yet."""
    settings = profile.metrics
    return MetricsCollector(
        source_for(profile, backend),
        settings.window_seconds,
        interval_s=settings.interval_seconds,
    )
