"""Real client load for metrics tests: paced threads posting predictions to a predictor."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests


class Load:
    """``rate`` prediction requests per second to ``url`` (a predictor's base URL) until
    stopped; counts what came back."""

    def __init__(self, url: str, model: str, body: dict[str, Any], rate: float) -> None:
        self.url = f"{url}/v1/models/{model}:predict"
        self.body = body
        self.interval = 1.0 / rate
        self.answered: dict[int, int] = {}
        self.failed = 0  # no HTTP answer at all
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load {url}", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        with requests.Session() as http:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    code = http.post(self.url, json=self.body, timeout=10).status_code
                    with self._lock:
                        self.answered[code] = self.answered.get(code, 0) + 1
                except requests.RequestException:
                    with self._lock:
                        self.failed += 1
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def count(self, code: int = 200) -> int:
        with self._lock:
            return self.answered.get(code, 0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
