"""A predictor's ``/metrics`` page (Prometheus text format) into ``PodCounters``.

Parsed with ``prometheus_client``'s own parser. Only prediction requests (protocols v1 and v2)
count as traffic: probes and scrapes would otherwise show as load. An error is a 5xx answer;
a 4xx is the client's mistake and not the deployment's failure.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from console.metrics import histogram
from console.metrics.readings import PodCounters

PREFIX = "fleetdeck_predictor_"
PREDICTION_PROTOCOLS = frozenset(("v1", "v2"))
REQUESTS = PREFIX + "requests"
LATENCY = PREFIX + "request_duration_seconds"
BATCH = PREFIX + "batch_size"
QUEUE = PREFIX + "queue_depth"
PRECOMPUTED = PREFIX + "precomputed_"


# The samples read below; everything else on the page (inference times, batch buckets, load
# phases, model info) is dropped before parsing, which halves the parser's work per scrape.
_KEPT_SAMPLES = (
    REQUESTS + "_total",
    LATENCY + "_bucket",
    BATCH + "_sum",
    BATCH + "_count",
    QUEUE,
    PRECOMPUTED,
)
_KEPT_FAMILIES = (REQUESTS, LATENCY, BATCH, QUEUE, PRECOMPUTED)


def relevant_lines(text: str) -> str:
    """The page with only the families and samples ``parse_counters`` reads."""
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[2].startswith(_KEPT_FAMILIES):
                kept.append(line)
        elif line.startswith(_KEPT_SAMPLES):
            kept.append(line)
    return "\n".join(kept) + "\n"


class ExpositionError(ValueError):
    """A page that is not a predictor's metrics; the message says what is wrong."""


def parse_counters(text: str) -> PodCounters:
    requests = errors = batch_sum = batch_count = queue = 0.0
    hits: float | None = None
    misses: float | None = None
    latency: dict[float, float] = {}
    seen_predictor = False
    try:
        families = list(text_string_to_metric_families(relevant_lines(text)))
    except ValueError as exc:
        raise ExpositionError(f"not Prometheus text format: {exc}") from None
    for family in families:
        name = family.name
        if not name.startswith(PREFIX):
            continue
        seen_predictor = True
        if name == REQUESTS:
            for sample in family.samples:
                if sample.name.endswith("_total") and (
                    sample.labels.get("protocol") in PREDICTION_PROTOCOLS
                ):
                    requests += sample.value
                    if sample.labels.get("code", "").startswith("5"):
                        errors += sample.value
        elif name == LATENCY:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    latency[bound] = latency.get(bound, 0.0) + sample.value
        elif name == BATCH:
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    batch_sum += sample.value
                elif sample.name.endswith("_count"):
                    batch_count += sample.value
        elif name == QUEUE:
            queue = sum(sample.value for sample in family.samples)
        elif name.startswith(PRECOMPUTED):
            for sample in family.samples:
                outcome = _lookup_outcome(sample.name, sample.labels)
                if outcome == "hit":
                    hits = (hits or 0.0) + sample.value
                elif outcome == "miss":
                    misses = (misses or 0.0) + sample.value
    if not seen_predictor:
        raise ExpositionError(f"no {PREFIX}* metrics: is this a fleetdeck predictor?")
    if hits is not None or misses is not None:
        hits, misses = hits or 0.0, misses or 0.0
    return PodCounters(
        requests=requests,
        errors=errors,
        latency=histogram.normalized(latency.items()),
        batch_sum=batch_sum,
        batch_count=batch_count,
        queue_depth=queue,
        precomputed_hits=hits,
        precomputed_misses=misses,
    )


def _lookup_outcome(sample: str, labels: dict[str, str]) -> str | None:
    """``..._hits_total`` / ``..._misses_total``, or one counter with ``result="hit|miss"``."""
    if not sample.endswith("_total"):
        return None
    result = labels.get("result") or labels.get("outcome")
    if result in ("hit", "miss"):
        return result
    stem = sample.removesuffix("_total")
    if stem.endswith(("_hits", "_hit")):
        return "hit"
    if stem.endswith(("_misses", "_miss")):
        return "miss"
    return None
