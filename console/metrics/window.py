"""Sliding windows over scraped cumulative counters: per-second rates as PromQL's rate() gives.

Each pod keeps its recent scrapes in a bounded ring; the window's rate is the newest sample
minus the oldest one still inside the window, over the time between them. A counter that went
down means the process restarted and the newest value counts whole.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from console.metrics import histogram
from console.metrics.readings import PodCounters, WindowRates


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float  # monotonic seconds
    counters: PodCounters


class PodWindow:
    """The recent scrapes of one predictor, at most ``max_samples`` of them."""

    def __init__(self, window_s: float, max_samples: int = 256) -> None:
        self.window_s = window_s
        self.samples: deque[Scrape] = deque(maxlen=max_samples)

    def add(self, at: float, counters: PodCounters) -> None:
        self.samples.append(Scrape(at, counters))
        # Keep one sample older than the window: it is the window's starting point.
        while len(self.samples) > 2 and self.samples[1].at <= at - self.window_s:
            self.samples.popleft()

    @property
    def last_at(self) -> float | None:
        return self.samples[-1].at if self.samples else None

    def rates(self) -> WindowRates:
        if not self.samples:
            return WindowRates()
        newest = self.samples[-1]
        oldest = next(
            (s for s in self.samples if s.at >= newest.at - self.window_s - 1e-9),
            newest,
        )
        # Prefer the sample just outside the window: the rate then covers the whole window.
        index = self.samples.index(oldest)
        if index > 0 and newest.at - self.samples[index - 1].at <= self.window_s * 1.5:
            oldest = self.samples[index - 1]
        span = newest.at - oldest.at
        new, old = newest.counters, oldest.counters
        if span <= 0:
            return WindowRates(queue_depth=new.queue_depth)
        reset = new.requests < old.requests or new.batch_count < old.batch_count

        def per_s(now: float, before: float) -> float:
            return (now if reset or now < before else now - before) / span

        def optional(now: float | None, before: float | None) -> float | None:
            if now is None:
                return None
            return per_s(now, before or 0.0)

        latency = histogram.delta(new.latency, None if reset else old.latency)
        return WindowRates(
            requests=per_s(new.requests, old.requests),
            errors=per_s(new.errors, old.errors),
            latency=tuple((bound, count / span) for bound, count in latency),
            batch_sum=per_s(new.batch_sum, old.batch_sum),
            batch_count=per_s(new.batch_count, old.batch_count),
            queue_depth=new.queue_depth,
            precomputed_hits=optional(new.precomputed_hits, old.precomputed_hits),
            precomputed_misses=optional(new.precomputed_misses, old.precomputed_misses),
            span_s=span,
        )
