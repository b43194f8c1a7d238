"""Plots of a deployment's (or the fleet's) metrics over time, from the collector's history.

``MetricsPanel`` is the numbers line and three plotext plots (p50/p99 latency, req/s, error %)
that the Deployment screen's Metrics tab and the Overview screen show. The screens feed it the
collector's history; the plots size themselves to the terminal on every render.

Refreshes: the collector calls back on its own thread after every round. ``RefreshCoalescer``
turns that into at most one pending ``MetricsRefreshed`` message on the UI thread (a slow UI
never builds a queue of redraws); the screen redraws only while it is the visible screen and
catches up when it is shown again.

A window without requests has no latency and no error rate (the collector says None): those
points are left out of the line and a plot with none at all says "no traffic" instead of
drawing zeros that would read as "0 ms, 0 % errors".
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from console.metrics.readings import LatestNumbers

Key = tuple[str, str]


class HistoryPoint(Protocol):
    """One refresh's numbers: a ``DeploymentMetrics`` or a ``FleetMetrics``."""

    @property
    def at(self) -> float: ...
    @property
    def numbers(self) -> LatestNumbers: ...
    @property
    def pods(self) -> int: ...  # the replicas that answered the refresh


@runtime_checkable
class MetricsHistory(Protocol):
    """What the plots need of the collector (``console.metrics.MetricsCollector``) beyond the
    Fleet screen's snapshot: histories and fleet-wide numbers."""

    def snapshot(self) -> Mapping[Key, Any]: ...
    def subscribe(self, on_refresh: Callable[[], None]) -> Callable[[], None]: ...
    def history(self, key: Key) -> Sequence[Any]: ...
    def fleet(self) -> Any: ...
    def fleet_history(self) -> Sequence[Any]: ...


@runtime_checkable
class Narrowable(Protocol):
    """A collector that can be told which deployments to scrape (None: every one)."""

    def set_wanted(self, keys: Collection[Key] | None) -> None: ...


@runtime_checkable
class ReportsError(Protocol):
    """A collector that says why its source as a whole failed last time ("" when it answered)."""

    @property
    def error(self) -> str: ...


def history_source(metrics: object) -> MetricsHistory | None:
    """The deck's metrics feed when it keeps history (the real collector does), else None."""
    return metrics if isinstance(metrics, MetricsHistory) else None


# -- what is drawn ---------------------------------------------------------------------------
Segment = tuple[list[float], list[float]]  # xs (seconds, 0 = the latest point), ys


@dataclass(frozen=True)
class Line:
    label: str
    color: str
    marker: str
    segments: list[Segment]  # runs of points with a value; a gap where there was none
    # "right": on the plot's right axis (a count beside a rate, each on its own scale).
    yside: str = "left"

    @property
    def empty(self) -> bool:
        return not any(xs for xs, _ in self.segments)


def line_of(
    points: Sequence[HistoryPoint],
    value: Callable[[LatestNumbers], float | None],
    label: str,
    color: str,
    marker: str = "braille",
) -> Line:
    """The points' values against their age in seconds, split where a value is None."""
    segments: list[Segment] = []
    latest = points[-1].at if points else 0.0
    xs: list[float] = []
    ys: list[float] = []
    for point in points:
        y = value(point.numbers)
        if y is None:
            if xs:
                segments.append((xs, ys))
                xs, ys = [], []
            continue
        xs.append(point.at - latest)
        ys.append(y)
    if xs:
        segments.append((xs, ys))
    return Line(label, color, marker, segments)


def pods_line(points: Sequence[HistoryPoint]) -> Line:
    """How many replicas answered each refresh, on the right axis: an autoscaler's steps
    beside the req/s that caused them."""
    latest = points[-1].at if points else 0.0
    xs = [point.at - latest for point in points]
    ys = [float(point.pods) for point in points]
    return Line("replicas", "blue", "dot", [(xs, ys)] if xs else [], yside="right")


@dataclass(frozen=True)
class PlotSpec:
    title: str
    lines: tuple[Callable[[Sequence[HistoryPoint]], Line], ...]
    no_data: str  # what the title says when no line has a point


LATENCY = PlotSpec(
    "latency ms",
    (
        # Two markers, not only two colours: the lines stay apart without colour (NO_COLOR).
        lambda ps: line_of(ps, lambda n: n.p50_ms, "p50", "cyan"),
        lambda ps: line_of(ps, lambda n: n.p99_ms, "p99", "red", "hd"),
    ),
    "latency: no traffic",
)
REQUESTS = PlotSpec(
    "req/s",
    # Zero req/s is a true measurement (the targets answered, nobody asked): drawn as such.
    (lambda ps: line_of(ps, lambda n: n.requests_per_s, "req/s", "green"), pods_line),
    "req/s: no data yet",
)
ERRORS = PlotSpec(
    "errors %",
    (lambda ps: line_of(ps, lambda n: n.error_percent, "5xx %", "orange"),),
    "errors: no traffic",
)
PLOTS: dict[str, PlotSpec] = {"latency": LATENCY, "rps": REQUESTS, "errors": ERRORS}


class MetricsPlot(PlotextPlot):
    """One plot of the history (``kind``: latency, rps or errors)."""

    def __init__(self, kind: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = PLOTS[kind]
        self.lines: list[Line] = []
        self.span_s = 0.0
        self.draws = 0

    @property
    def has_data(self) -> bool:
        return any(not line.empty for line in self.lines if line.yside == "left")

    @property
    def title_text(self) -> str:
        return self.spec.title if self.has_data else self.spec.no_data

    def show_history(self, points: Sequence[HistoryPoint]) -> None:
        self.lines = [make(points) for make in self.spec.lines]
        self.span_s = points[-1].at - points[0].at if points else 0.0
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title_text)
        if self.has_data:
            for line in self.lines:
                for index, (xs, ys) in enumerate(line.segments):
                    label = line.label if index == 0 else ""
                    plt.plot(
                        xs, ys, label=label, color=line.color, marker=line.marker, yside=line.yside
                    )
            for side in ("left", "right"):
                values = [
                    y
                    for line in self.lines
                    if line.yside == side
                    for _, ys in line.segments
                    for y in ys
                ]
                if values:
                    lowest, highest = min(values), max(values)
                    top = highest * 1.1 if highest > 0 else 1.0
                    upper = top if side == "left" else highest + 1
                    # The stub types yside as a float; plotext takes "left" or "right".
                    plt.ylim(min(0.0, lowest), upper, yside=side)  # type: ignore[arg-type]
            if any(line.yside == "right" and not line.empty for line in self.lines):
                # A count: whole ticks, short enough to leave the next plot's axis apart.
                most = max(
                    y
                    for line in self.lines
                    if line.yside == "right"
                    for _, ys in line.segments
                    for y in ys
                )
                step = max(1, math.ceil(most / 4))
                ticks = list(range(0, int(most) + 2, step))
                labels = [str(t) for t in ticks]
                plt.yticks(ticks, labels, yside="right")  # type: ignore[arg-type]
            plt.xlim(min(-1.0, -self.span_s), 0.0)
            plt.xlabel("seconds ago")
        self.draws += 1
        self.refresh()


# -- the panel ---------------------------------------------------------------------------------
def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def numbers_line(numbers: LatestNumbers | None, extra: str = "") -> str:
    """``req/s 21.4  p50 3.1  p90 5.0  p99 9.8 ms  errors 0.00 %  batch 1.0  queue 0``;
    dashes where the window had nothing to measure."""
    if numbers is None:
        return "no metrics yet" + (f"  {extra}" if extra else "")
    parts = [
        f"req/s {numbers.requests_per_s:.1f}",
        f"p50 {fmt(numbers.p50_ms)}",
        f"p90 {fmt(numbers.p90_ms)}",
        f"p99 {fmt(numbers.p99_ms, ' ms')}",
        f"errors {fmt(numbers.error_percent, ' %', 2)}",
        f"batch {fmt(numbers.batch_size)}",
        f"queue {numbers.queue_depth:.0f}",
    ]
    quiet = "no traffic: " if numbers.requests_per_s == 0 else ""
    return quiet + "  ".join(parts) + (f"  {extra}" if extra else "")


class MetricsPanel(Vertical):
    """The numbers of the latest window over the three plots of the history."""

    DEFAULT_CSS = """
    MetricsPanel { height: 1fr; }
    MetricsPanel .metrics-numbers { height: auto; padding: 0 1; }
    MetricsPanel .metrics-plots { height: 1fr; min-height: 6; }
    MetricsPanel MetricsPlot { width: 1fr; height: 1fr; margin-right: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.numbers_text = "no metrics yet"

    def compose(self) -> ComposeResult:
        yield Static(self.numbers_text, classes="metrics-numbers")
        with Horizontal(classes="metrics-plots"):
            yield MetricsPlot("latency", id="plot-latency")
            yield MetricsPlot("rps", id="plot-rps")
            yield MetricsPlot("errors", id="plot-errors")

    @property
    def plots(self) -> list[MetricsPlot]:
        return list(self.query(MetricsPlot))

    def show(self, points: Sequence[HistoryPoint], extra: str = "") -> None:
        self.numbers_text = numbers_line(points[-1].numbers if points else None, extra)
        self.query_one(".metrics-numbers", Static).update(self.numbers_text)
        for plot in self.plots:
            plot.show_history(points)


# -- refreshes from the collector's thread ----------------------------------------------------
def is_shown(screen: Screen[Any]) -> bool:
    """The screen is on top, or only see-through screens (a modal such as the help) are above
    it. (Textual's ``is_current`` also counts the screen right under an opaque one.)"""
    try:
        stack = screen.app.screen_stack
    except Exception:  # no app, no stack: not shown
        return False
    if screen not in stack:
        return False
    above = stack[stack.index(screen) + 1 :]
    return all(other.styles.background.a < 1 for other in above)


class MetricsRefreshed(Message):
    """The collector finished a round (at most one of these is pending per screen)."""


class RefreshCoalescer:
    """The collector's callback: posts ``MetricsRefreshed`` to ``target`` unless one is still
    waiting to be handled, so refreshes faster than the UI draws merge into one."""

    def __init__(self, target: MessagePump) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._pending = False
        self.posted = 0

    def __call__(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
            self.posted += 1
        self.target.post_message(MetricsRefreshed())

    def taken(self) -> None:
        """The UI thread took the message: the next refresh posts again."""
        with self._lock:
            self._pending = False
