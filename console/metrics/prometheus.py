"""A Prometheus server as the source: one instant query for the whole fleet.

The server already scrapes every predictor; one ``/api/v1/query`` asks for every deployment's
rates over the window at once (the parts joined with ``or``, each tagged by a label of its
own), so a refresh costs one request however large the fleet. Percentiles are computed here
from the summed bucket rates with the same arithmetic as the scrape sources, so both paths
give the same numbers for the same traffic.

The deployment of a series is read from two labels the scrape configuration attaches
(``namespace`` and ``app_kubernetes_io_name`` by default, as a relabelled
``kubernetes_sd_configs`` pod job produces them); the profile can name others.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import urllib3

from console.metrics.exposition import BATCH, LATENCY, PRECOMPUTED, QUEUE, REQUESTS
from console.metrics.readings import Key, WindowRates
from console.metrics.sources import Reading, SourceError, Wanted

PART = "fleetdeck_part"
DEFAULT_NAMESPACE_LABEL = "namespace"
DEFAULT_DEPLOYMENT_LABEL = "app_kubernetes_io_name"


def fleet_query(window_s: float, namespace_label: str, deployment_label: str) -> str:
    """The one query: every part a ``sum by`` deployment, tagged with ``fleetdeck_part``."""
    by = f"{namespace_label}, {deployment_label}"
    window = f"{max(1, round(window_s))}s"
    prediction = 'protocol=~"v1|v2"'
    parts = {
        "requests": f"sum by ({by}) (rate({REQUESTS}_total{{{prediction}}}[{window}]))",
        "errors": (f'sum by ({by}) (rate({REQUESTS}_total{{{prediction},code=~"5.."}}[{window}]))'),
        "latency": f"sum by ({by}, le) (rate({LATENCY}_bucket[{window}]))",
        "batch_sum": f"sum by ({by}) (rate({BATCH}_sum[{window}]))",
        "batch_count": f"sum by ({by}) (rate({BATCH}_count[{window}]))",
        "queue": f"sum by ({by}) ({QUEUE})",
        "hits": (
            f'sum by ({by}) (rate({{__name__=~"{PRECOMPUTED}(.*_)?hits?_total"}}[{window}]))'
            f' or sum by ({by}) (rate({{__name__=~"{PRECOMPUTED}.*_total",result="hit"}}'
            f"[{window}]))"
        ),
        "misses": (
            f'sum by ({by}) (rate({{__name__=~"{PRECOMPUTED}(.*_)?miss(es)?_total"}}[{window}]))'
            f' or sum by ({by}) (rate({{__name__=~"{PRECOMPUTED}.*_total",result="miss"}}'
            f"[{window}]))"
        ),
        # Pods answering Prometheus's scrapes, and those not answering.
        "up": f'sum by ({by}) (up{{{deployment_label}!=""}} == 1)',
        "down": f'count by ({by}) (up{{{deployment_label}!=""}} == 0)',
    }
    return " or ".join(
        f'label_replace(({expr}), "{PART}", "{part}", "", "")' for part, expr in parts.items()
    )


class PrometheusSource:
    name = "prometheus"
    windowed = True

    def __init__(
        self,
        url: str,
        *,
        namespace_label: str = DEFAULT_NAMESPACE_LABEL,
        deployment_label: str = DEFAULT_DEPLOYMENT_LABEL,
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.namespace_label = namespace_label
        self.deployment_label = deployment_label
        self.timeout_s = timeout_s
        self._http = urllib3.PoolManager(maxsize=2, retries=False, headers=headers)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector; raises SourceError with the server's reason."""
        endpoint = f"{self.url}/api/v1/query"
        try:
            answer = self._http.request(
                "POST",
                endpoint,
                fields={"query": promql},
                encode_multipart=False,
                timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"Prometheus at {self.url} did not answer: {exc}") from None
        try:
            body = json.loads(answer.data)
        except ValueError:
            raise SourceError(
                f"{endpoint}: HTTP {answer.status}, not a Prometheus API answer"
            ) from None
        if answer.status != 200 or body.get("status") != "success":
            raise SourceError(
                f"{endpoint}: HTTP {answer.status}: {body.get('error') or body.get('status')}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise SourceError(f"{endpoint}: expected a vector, got {data.get('resultType')}")
        result: list[dict[str, Any]] = data.get("result") or []
        return result

    def read(self, wanted: Wanted, window_s: float) -> Reading:
        series = self.query(fleet_query(window_s, self.namespace_label, self.deployment_label))
        parts: dict[Key, dict[str, Any]] = defaultdict(dict)
        for item in series:
            labels = item.get("metric") or {}
            key = (labels.get(self.namespace_label, ""), labels.get(self.deployment_label, ""))
            if not key[1] or (wanted is not None and key not in wanted):
                continue
            value = float(item["value"][1])
            if math.isnan(value):
                continue
            part = labels.get(PART, "")
            if part == "latency":
                parts[key].setdefault("latency", []).append((float(labels["le"]), value))
            else:
                parts[key][part] = value
        reading = Reading()
        for key, got in parts.items():
            reading.keys.add(key)
            looked_up = "hits" in got or "misses" in got
            reading.rates[key] = WindowRates(
                requests=got.get("requests", 0.0),
                errors=got.get("errors", 0.0),
                latency=tuple(sorted(got.get("latency", []))),
                batch_sum=got.get("batch_sum", 0.0),
                batch_count=got.get("batch_count", 0.0),
                queue_depth=got.get("queue", 0.0),
                precomputed_hits=got.get("hits", 0.0) if looked_up else None,
                precomputed_misses=got.get("misses", 0.0) if looked_up else None,
                span_s=window_s,
            )
            reading.pod_counts[key] = int(got.get("up", 0))
            down = int(got.get("down", 0))
            if down:
                reading.problems[key] = [f"{down} target(s) down in Prometheus"]
        return reading

    def close(self) -> None:
        self._http.clear()
