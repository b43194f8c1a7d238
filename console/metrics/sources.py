"""Where metrics come from: the interface every source implements, and what a read returns.

Two kinds of source:
- a *scrape* source (each predictor's ``/metrics`` directly, or through the API server's pod
  proxy) returns every pod's cumulative counters; the collector turns them into rates over
  its sliding window;
- a *windowed* source (a Prometheus server) returns each deployment's rates over the window
  already, computed by the server from its own scrapes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from console.metrics.readings import Key, PodCounters, WindowRates

Wanted = frozenset[Key] | None  # None: every deployment


@dataclass
class Reading:
    """One refresh's answers. ``pods`` (scrape sources) or ``rates`` (windowed sources)."""

    pods: dict[Key, dict[str, PodCounters]] = field(default_factory=dict)
    rates: dict[Key, WindowRates] = field(default_factory=dict)
    pod_counts: dict[Key, int] = field(default_factory=dict)  # windowed sources: pods up
    problems: dict[Key, list[str]] = field(default_factory=dict)  # per target: what failed
    targeted: dict[Key, set[str]] = field(default_factory=dict)  # scrape sources: pods asked
    keys: set[Key] = field(default_factory=set)  # every deployment asked about


class SourceError(Exception):
    """The source as a whole failed (Prometheus unreachable, say); the message says why."""


class Source(Protocol):
    """A metrics source. ``read`` must return within about ``timeout_s`` whatever the targets
    do: a slow or dead target is reported in ``problems``, never waited on past its timeout."""

    name: str
    windowed: bool

    def read(self, wanted: Wanted, window_s: float) -> Reading: ...

    def close(self) -> None: ...


def wanted_set(keys: Collection[Key] | None) -> Wanted:
    return None if keys is None else frozenset(keys)
