"""Retrying with backoff, once for the whole console: the Kubernetes watchers' reconnects and the
deck's failed reads wait the same way."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Exponential delays, capped, with "equal jitter" (half fixed, half random).

    The jitter spreads the retries of many watchers (and many consoles) after an API server
    restart; the fixed half keeps a retry from ever being immediate.
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return delay / 2 + self.rng() * delay / 2

    def reset(self) -> None:
        self.attempt = 0
