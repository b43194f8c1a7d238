"""The one live loader every deck screen reads through.

A screen hands it a blocking read (the backend, the store) and asks for refreshes as often as it
likes (a change notification, a timer, ctrl+r). The loader runs the read in a thread worker, at
most one at a time: a refresh asked while one runs becomes exactly one more afterwards, and
reads are spaced by a minimum interval (and, for large reads, by a multiple of how long the last
one took). The result comes back to the screen as a ``Loaded`` message.

A read that raises is never lost: the loader shows what failed on the screen's ``LoadErrorLine``,
posts ``LoadFailed``, and tries again with a capped, jittered exponential backoff; the next good
read clears the line. A read that half worked returns ``Incomplete``: its value is shown and its
error is handled as a failure (shown, retried) or, for a read whose parts are independent (one
cluster of several not answering: ``partial_backoff=False``), only shown, so the parts that do
answer keep their pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.text import Text
from textual.dom import DOMNode
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from console.backoff import Backoff
from console.views.format import printable

T = TypeVar("T")

MIN_REFRESH_SECONDS = 0.3
FIRST_RETRY_SECONDS = 1.0  # then doubling, capped (console/backoff.py)


@dataclass(frozen=True)
class Incomplete(Generic[T]):
    """A read that got part of the way: ``value`` is shown, ``error`` says what is missing."""

    value: T
    error: str


class Loaded(Message, Generic[T], bubble=False):
    """A read of ``loader`` finished: ``value`` is what it read."""

    def __init__(self, loader: LiveLoader[T], value: T) -> None:
        super().__init__()
        self.loader = loader
        self.value = value


class LoadFailed(Message, Generic[T], bubble=False):
    """A read of ``loader`` failed; ``error`` is what the screen shows (printable)."""

    def __init__(self, loader: LiveLoader[T], error: str) -> None:
        super().__init__()
        self.loader = loader
        self.error = error


class LoadErrorLine(Static):
    """One line saying why the screen's data is stale; hidden while the reads succeed."""

    DEFAULT_CSS = """
    LoadErrorLine { height: auto; max-height: 2; color: $error; padding: 0 1; display: none; }
    """

    def show_error(self, text: str) -> None:
        self.update(Text(text))  # Text, never markup: the error quotes the backend
        self.display = bool(text)


def describe(exc: BaseException) -> str:
    """An exception as one plain line: its type (a bare ``KeyError`` says nothing) and text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LiveLoader(Generic[T]):
    """Reads ``read`` for ``owner`` (a screen) off the event loop; see the module's docstring.

    ``what`` names the data in the error line ("the fleet"); ``spacing`` multiplies the last
    read's duration into the pause before the next one (0: only ``min_interval``)."""

    def __init__(
        self,
        owner: DOMNode,
        read: Callable[[], T | Incomplete[T]],
        *,
        name: str,
        what: str,
        min_interval: float = MIN_REFRESH_SECONDS,
        spacing: float = 0.0,
        backoff: Backoff | None = None,
        partial_backoff: bool = True,
    ) -> None:
        self.owner = owner
        self.read = read
        self.name = name
        self.what = what
        self.min_interval = min_interval
        self.spacing = spacing
        self.backoff = backoff or Backoff(initial=FIRST_RETRY_SECONDS)
        self.partial_backoff = partial_backoff
        self.loads = 0  # reads that delivered a value: tests wait on it, the bench counts it
        self.failures = 0  # failed reads in a row (0 once one succeeds)
        self.error = ""  # what the error line shows ("" when the last read succeeded)
        self._running = False
        self._again = False
        self._next_at = 0.0  # time.monotonic() before which no read starts
        self._timer: Timer | None = None
        self._wake_lock = threading.Lock()
        self._wake_posted = False
        self._unsubscribes: list[Callable[[], None]] = []

    # -- what the screen calls ------------------------------------------------------------------
    def error_line(self) -> LoadErrorLine:
        """The widget this loader shows its error in: the screen composes it where it fits."""
        return LoadErrorLine("", id=f"{self.name}-load-error", markup=False)

    def start(self, *, every: float | None = None) -> None:
        """The first read now, then (live screens) one at least every ``every`` seconds."""
        if every is not None:
            self.owner.set_interval(every, self.request)
        self.request()

    def follow(self, subscribe: Callable[[Callable[[], None]], Callable[[], None]]) -> None:
        """Refresh on every change ``subscribe`` reports (from any thread) until ``stop``."""
        self._unsubscribes.append(subscribe(self.request_from_thread))

    def stop(self) -> None:
        """The screen is going: no more change notifications (its timers end with it)."""
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes = []

    def request(self) -> None:
        """Read soon: now, after the spacing or the backoff, or after the read in flight."""
        if self._running:
            self._again = True
            return
        if self._timer is not None:  # a read is already scheduled: this one is part of it
            return
        wait = self._next_at - time.monotonic()
        if wait > 0:
            self._timer = self.owner.set_timer(wait, self._start)
            return
        self._start()

    def request_from_thread(self) -> None:
        """``request`` from a backend's notifier thread: one wake-up queued at a time, so a burst
        of changes costs the event loop one callback."""
        with self._wake_lock:
            if self._wake_posted:
                return
            self._wake_posted = True
        self.owner.call_later(self._woken)

    # -- the read -------------------------------------------------------------------------------
    def _woken(self) -> None:
        with self._wake_lock:
            self._wake_posted = False
        self.request()

    def _start(self) -> None:
        self._timer = None
        self._running, self._again = True, False
        self.owner.run_worker(
            self._read_in_thread, name=self.name, group=f"{self.name}-load", thread=True,
            exit_on_error=False,
        )  # fmt: skip

    def _read_in_thread(self) -> None:
        started = time.perf_counter()
        try:
            outcome: T | Incomplete[T] | BaseException = self.read()
        except Exception as exc:  # every failure comes back to the event loop, and is retried
            outcome = exc
        seconds = time.perf_counter() - started
        self.owner.call_later(self._finished, outcome, seconds)  # thread-safe

    def _finished(self, outcome: T | Incomplete[T] | BaseException, seconds: float) -> None:
        self._running = False
        if isinstance(outcome, BaseException):
            self._failed(f"cannot read {self.what}: {describe(outcome)}")
        elif isinstance(outcome, Incomplete):
            self._delivered(outcome.value, seconds)
            if self.partial_backoff:
                self._failed(outcome.error)
            else:  # said, and the next refresh comes at the usual pace
                self.error = printable(outcome.error)
                self._show(self.error)
                self.owner.post_message(LoadFailed(self, self.error))
        else:
            self._delivered(outcome, seconds)
            self._recovered()
        if self._again:
            self.request()

    def _delivered(self, value: T, seconds: float) -> None:
        self.loads += 1
        self._next_at = time.monotonic() + max(self.min_interval, seconds * self.spacing)
        self.owner.post_message(Loaded(self, value))

    def _recovered(self) -> None:
        if self.failures or self.error:
            self.failures, self.error = 0, ""
            self.backoff.reset()
            self._show("")

    def _failed(self, error: str) -> None:
        self.failures += 1
        delay = self.backoff.next()
        self._next_at = time.monotonic() + delay
        self.error = printable(error)
        self._show(f"{self.error} · retrying in {delay:.0f} s")
        self.owner.post_message(LoadFailed(self, self.error))
        self._again = True  # the retry: one read when the backoff is over

    def _show(self, text: str) -> None:
        for line in self.owner.query(f"#{self.name}-load-error").results(LoadErrorLine):
            line.show_error(text)
