"""Is the API server answering? A cheap ``GET /readyz`` beside the watches, every few seconds.

The watches alone answer this badly in both directions:
- **Back late.** Through an API server restart each watcher backs off up to 30 s (connection
  refused, then the 403s a restarting server answers until its RBAC caches sync), so rows came
  back 14-80 s after the server did. The probe sees ``/readyz`` turn 200 (which waits for RBAC)
  and wakes every watcher at once, each after its own small jitter.
- **Hung, shown live.** A server that accepts connections and never answers (stopped, overloaded,
  partitioned) leaves every watch waiting quietly for its read timeout (minutes): the deck kept
  showing "live" over stale rows. A probe that times out twice in a row marks the cluster as
  not answering, with since-when, until it answers again.

A refused connection is reported at once; a timeout only when the next probe times out too, so
one slow answer from a busy server does not flip the deck.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3

from console.backends.kubernetes.connection import ConnectionTracker
from console.backends.kubernetes.watcher import detail_of, reason_of

log = logging.getLogger(__name__)

SCOPE = "api-server"  # the probe's scope in the connection tracker
NOT_ANSWERING = "the API server does not answer"


@dataclass(frozen=True)
class ProbeSettings:
    interval: float = 2.0  # between the end of one probe and the next
    timeout: float = 3.0  # connect and read, each
    timeouts_before_failing: int = 2


class ServerProbe:
    """One thread asking ``/readyz``; reports to ``tracker`` under :data:`SCOPE`, and calls
    ``on_answering_again`` when the server answers after it did not."""

    def __init__(
        self,
        api_client: Any,
        tracker: ConnectionTracker,
        stopping: threading.Event,
        on_answering_again: Callable[[], None],
        settings: ProbeSettings | None = None,
    ) -> None:
        self._api = api_client
        self._tracker = tracker
        self._stopping = stopping
        self._on_answering_again = on_answering_again
        self.settings = settings or ProbeSettings()
        self.failing = False
        self.failing_since: datetime | None = None
        self.failure = ""  # why, while failing
        self.recoveries = 0  # times the server answered again after failing
        self.thread = threading.Thread(target=self._run, name="fleet-cache-probe", daemon=True)

    def _run(self) -> None:
        timeouts = 0
        while not self._stopping.is_set():
            problem = self.ask()
            if self._stopping.is_set():
                break
            if problem is None:
                timeouts = 0
                if self.failing:
                    self.failing, self.failing_since = False, None
                    self.recoveries += 1
                    log.info("the API server answers again; resuming the watches")
                    self._on_answering_again()
                self._tracker.cleared(SCOPE)
            else:
                reason, detail, timed_out = problem
                timeouts = timeouts + 1 if timed_out else 0
                if not timed_out or timeouts >= self.settings.timeouts_before_failing:
                    if not self.failing:
                        log.warning("API server probe: %s", detail)
                        self.failing_since = datetime.now(UTC)
                    self.failure = reason
                    self.failing = True
                    self._tracker.failed(SCOPE, reason, detail)
            if 0 < timeouts < self.settings.timeouts_before_failing:
                continue  # a first timeout is asked again at once: hung is known sooner
            self._stopping.wait(self.settings.interval)

    def ask(self) -> tuple[str, str, bool] | None:
        """None when the server is ready; else (reason, detail, whether it timed out)."""
        timeout = self.settings.timeout
        try:
            method, url, headers, _, _ = self._api.param_serialize(
                "GET", "/readyz", auth_settings=["BearerToken"]
            )
            # Straight to urllib3, without its retries: the client's pool retries a timed-out
            # request three times, which made one probe of a hung server take four timeouts.
            response = self._api.rest_client.pool_manager.request(
                method,
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,
            )
            status = response.status
            body = response.data
        except Exception as error:  # any failure is the answer: not ready, or not answering
            reason = reason_of(error)
            timed_out = "timed out" in reason
            return (NOT_ANSWERING if timed_out else reason), detail_of(error), timed_out
        # 401/403: the server answers, but this user may not read /readyz (clusters can
        # restrict it): the watches tell the rest. Anything else but 200 is a server that is
        # not ready yet (500 while starting).
        if status not in (200, 401, 403):
            failing = body.decode("utf-8", "replace").strip().splitlines()[-3:]
            return f"HTTP {status}", f"HTTP {status} from /readyz: {' '.join(failing)}"[:500], False
        return None
