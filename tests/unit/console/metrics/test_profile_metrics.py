"""The profile's [metrics] section: which source, and mistakes said plainly."""

from __future__ import annotations

from typing import Any

import pytest

from console.profile import ProfileError, parse_profile

KUBERNETES: dict[str, Any] = {
    "backend": "kubernetes",
    "kubernetes": {"namespaces": ["models"]},
    "store": {"root": "/store"},
}


def test_without_a_section_kubernetes_uses_the_pod_proxy_and_local_scrapes_directly() -> None:
    assert parse_profile("k", KUBERNETES, source=None).metrics.resolved_source("kubernetes") == (
        "pod-proxy"
    )
    local = parse_profile("l", {"backend": "local"}, source=None)
    assert local.metrics.resolved_source("local") == "direct"
    assert local.metrics.window_seconds == 30.0


def test_a_prometheus_url_makes_prometheus_the_source() -> None:
    data = {**KUBERNETES, "metrics": {"prometheus_url": "http://prom:9090", "window_seconds": 60}}
    settings = parse_profile("k", data, source=None).metrics

    assert settings.resolved_source("kubernetes") == "prometheus"
    assert settings.prometheus_url == "http://prom:9090"
    assert settings.window_seconds == 60.0


@pytest.mark.parametrize(
    ("metrics", "backend", "message"),
    [
        ({"source": "prometheus"}, "kubernetes", "metrics.prometheus_url: missing"),
        ({"prometheus_url": "prom:9090"}, "kubernetes", "expected an http:// or https:// URL"),
        ({"source": "pod-proxy"}, "local", '"pod-proxy" needs backend = "kubernetes"'),
        ({"source": "carrier-pigeon"}, "kubernetes", "metrics.source: expected"),
        ({"window_seconds": 3, "interval_seconds": 2}, "kubernetes", ">= 2 × interval_seconds"),
        ({"scrape_concurency": 4}, "kubernetes", "metrics.scrape_concurency: unknown key"),
    ],
)
def test_mistakes_name_the_key_and_what_was_expected(
    metrics: dict[str, Any], backend: str, message: str
) -> None:
    data = {**(KUBERNETES if backend == "kubernetes" else {"backend": "local"}), "metrics": metrics}
    with pytest.raises(ProfileError) as raised:
        parse_profile("p", data, source=None)
    assert message in str(raised.value)
