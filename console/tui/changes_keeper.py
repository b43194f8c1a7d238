"""The deck's Changes timeline between openings of the Changes screen.

Built once in the background a moment after the deck starts, then only marked when a cluster
changes: the first ``c`` shows a full page at once, and a later opening rebuilds only the
deployments that changed. A new session (``:ctx``) gets a new timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from textual.app import App

from console.tui.context import ClusterDecks
from console.tui.screens.changes import KeptTimeline, kept_timeline

log = logging.getLogger("fleetdeck.deck")

WARM_AFTER_SECONDS = 2.0  # after the Fleet screen's first read, not competing with it


class ChangesKeeper:
    def __init__(self, app: App[None], current: Callable[[], ClusterDecks]) -> None:
        self.app = app
        self.current = current  # the deck's clusters now (a session switch replaces them)
        self._clusters: ClusterDecks | None = None
        self._kept: KeptTimeline | None = None
        self._stops: list[Callable[[], None]] = []
        self.warmed = False  # the background build finished (the bench waits for it)

    def timeline(self, clusters: ClusterDecks) -> KeptTimeline:
        """The kept timeline of ``clusters``; a new one for other clusters (a new session)."""
        if self._kept is None or self._clusters is not clusters:
            self.stop()
            self._kept = kept_timeline(clusters.home, clusters)
            self._clusters = clusters
            self.warmed = False
            self._stops = self._kept.follow()
        return self._kept

    def warm_later(self, clusters: ClusterDecks) -> None:
        """Build the timeline in a worker in a moment (a live deck only)."""
        if clusters.home.live:
            self.app.set_timer(WARM_AFTER_SECONDS, partial(self._warm, clusters))

    def _warm(self, clusters: ClusterDecks) -> None:
        if clusters is not self.current():
            return  # the session changed meanwhile: the new one is warmed on its own
        kept = self.timeline(clusters)
        self.app.run_worker(
            partial(self._build, kept),
            name="changes-warm",
            group="changes-warm",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def _build(self, kept: KeptTimeline) -> None:
        try:
            kept.read()
        except Exception:  # the screen's own read says what fails, when it opens
            log.exception("building the changes timeline in the background")
            return
        if kept is self._kept:
            self.warmed = True

    def stop(self) -> None:
        for stop in self._stops:
            stop()
        self._stops = []
