"""How a scrape source spends its bounded concurrency when some targets hang."""

from __future__ import annotations

import threading
import time

from console.metrics.readings import Key
from console.metrics.scrape import ScrapeError, ScrapeSource, Target
from console.metrics.sources import Wanted
from serving.metrics import PredictorMetrics

KEY: Key = ("models", "digits")
PAGE = PredictorMetrics().exposition().decode()


def source(targets: list[Target], timeout_s: float) -> ScrapeSource:
    def discover(wanted: Wanted) -> tuple[list[Target], set[Key]]:
        return targets, {KEY}

    def fetch(target: Target, timeout: float) -> str:
        if target.pod.startswith("hung"):
            threading.Event().wait(timeout)  # a target that never answers, until the timeout
            raise ScrapeError("timed out")
        return PAGE

    return ScrapeSource("test", discover, fetch, concurrency=1, timeout_s=timeout_s)


def test_targets_that_failed_last_time_wait_behind_the_healthy_ones() -> None:
    hung = [Target(KEY, f"hung-{i}", "x") for i in range(6)]  # 6 × 0.3 s > the read budget
    healthy = [Target(KEY, f"ok-{i}", "x") for i in range(2)]
    scraper = source(hung + healthy, timeout_s=0.3)
    try:
        first = scraper.read(None, 30.0)
        time.sleep(2.0)  # let the first round's queued fetches finish
        second = scraper.read(None, 30.0)
    finally:
        scraper.close()

    # One worker, six hung targets first: the healthy ones missed the first round...
    assert set(first.pods[KEY]) == set()
    assert any(p.startswith("ok-0: no answer within 0.3 s") for p in first.problems[KEY])
    # ...and go first in the next, while the hung ones are reported again.
    assert set(second.pods[KEY]) == {"ok-0", "ok-1"}
    assert all(p.startswith("hung-") for p in second.problems[KEY])


def test_a_target_whose_last_fetch_still_runs_is_skipped_not_queued_again() -> None:
    scraper = source([Target(KEY, "hung-0", "x")], timeout_s=0.5)
    try:
        scraper.read(None, 30.0)  # leaves the fetch running for a moment at most
        again = scraper.read(None, 30.0)
    finally:
        scraper.close()

    assert again.problems[KEY][0] in (
        "hung-0: previous scrape still running",
        "hung-0: timed out",
        "hung-0: no answer within 0.5 s",
    )
