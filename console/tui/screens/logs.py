"""The Logs screen: a live tail of one pod, or several merged with a coloured prefix.

The stream is read by a thread worker into a bounded hand-over list; the UI drains it at most
every ``FLUSH_SECONDS`` (one append and one repaint per drain, however many lines arrived), so
a pod writing 20,000 lines per second costs the event loop a few appends per second. Memory is
bounded twice: the hand-over list keeps at most the view's capacity (a UI that fell behind skips
what it could never show), and the view keeps a ring of the newest lines. Pause stops reading:
the backend's own bounded queue then holds the stream back at the API server.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from console.backends.base import LogRequest
from console.tui.context import DeckContext
from console.tui.messages import LogSource
from console.tui.widgets.log_view import LogView
from console.tui.widgets.where_line import WhereLine
from console.views.format import printable
from console.views.log_buffer import DEFAULT_CAPACITY, LogBuffer, PodColours, SearchQuery

FLUSH_SECONDS = 0.05  # hand-over cadence: 20 repaints a second at most, whatever the rate
SINCE_KEYS = {"1": 60, "2": 5 * 60, "3": 15 * 60, "4": 30 * 60, "5": 60 * 60}
PromptKind = Literal["search", "tail", "since", "container", "save"]
PROMPTS: dict[PromptKind, str] = {
    "search": "search (regex or text; lower case ignores case)",
    "tail": "tail: lines to start with (a number, or 'all')",
    "since": "since: e.g. 30s, 5m, 2h, 1d (empty: no limit)",
    "container": "container (empty: the pod's default)",
    "save": "save to file",
}


class _Stream:
    """One read of the backend's log stream; replaced whole when an option changes."""

    def __init__(self, capacity: int) -> None:
        _OPEN_STREAMS.add(self)
        self.capacity = capacity
        self.stop = threading.Event()  # handed to the backend, which also sets it when done
        self.cancelled = False  # the screen moved on (closed, or replaced this stream)
        self.running = threading.Event()  # cleared while paused
        self.running.set()
        self.lock = threading.Lock()
        self.pending: list[str] = []
        self.widest = 0
        self.skipped = 0  # lines the UI fell too far behind to show, since the last take
        self.wake_posted = False

    def take(self) -> tuple[list[str], int, int]:
        """The lines waiting, the widest of them, and how many were skipped before them."""
        with self.lock:
            lines, widest, skipped = self.pending, self.widest, self.skipped
            self.pending, self.widest, self.skipped, self.wake_posted = [], 0, 0, False
        return lines, widest, skipped

    def end(self) -> None:
        self.cancelled = True
        self.stop.set()
        self.running.set()  # a paused reader must wake up to see the stop


_OPEN_STREAMS: weakref.WeakSet[_Stream] = weakref.WeakSet()


def end_all_streams() -> None:
    """Stop every log stream still read, when the deck exits: quitting from an open Logs screen
    does not unmount it first, and its reader thread (in asyncio's default executor, which the
    event loop joins on the way out) would otherwise hold the process after the terminal is
    restored."""
    for stream in list(_OPEN_STREAMS):
        stream.end()


def since_text(since: timedelta | None) -> str:
    if since is None:
        return ""
    seconds = int(since.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_since(text: str) -> timedelta:
    from console.audit import parse_since as parse

    try:
        return parse(text)
    except ValueError:
        raise ValueError(
            f"since {text!r}: give a number and a unit, e.g. 30s, 5m, 2h, 1d"
        ) from None


class StatusLine(Widget):
    """One line of text that repaints without a layout pass (it changes 20 times a second)."""

    DEFAULT_CSS = "StatusLine { height: 1; }"

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = ""

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Content:
        return Content(self.text)


class LogsScreen(Screen[None]):
    """Live logs of ``request.pods`` in ``request.namespace``; the request's options are where
    the screen starts (follow is always on: it is what a tail is for)."""

    DEFAULT_CSS = """
    LogsScreen #logs-header { height: 1; background: $panel; color: $text; padding: 0 1; }
    LogsScreen LogView { height: 1fr; }
    LogsScreen #logs-prompt { height: 3; display: none; }
    LogsScreen #logs-prompt.-shown { display: block; }
    LogsScreen #logs-status { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    LogsScreen #logs-status.-problem { color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="logs.back"),
        Binding("s", "toggle_follow", "Follow", id="logs.toggle_follow"),
        Binding("p", "toggle_pause", "Pause", id="logs.toggle_pause"),
        Binding("slash", "prompt('search')", "Search", id="logs.prompt-search"),
        Binding("n", "next_match", "Next", id="logs.next_match"),
        Binding("N", "previous_match", "Prev", id="logs.previous_match"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.toggle_wrap"),
        Binding("t", "toggle_timestamps", "Timestamps", id="logs.toggle_timestamps"),
        Binding("P", "toggle_previous", "Previous container", id="logs.toggle_previous"),
        Binding("c", "prompt('container')", "Container", id="logs.prompt-container"),
        Binding("T", "prompt('tail')", "Tail", id="logs.prompt-tail"),
        Binding("S", "prompt('since')", "Since", id="logs.prompt-since"),
        Binding("0", "since(0)", "All since", show=False, id="logs.since-0"),
        Binding("1", "since(60)", "Since 1m", show=False, id="logs.since-60"),
        Binding("2", "since(300)", "Since 5m", show=False, id="logs.since-300"),
        Binding("3", "since(900)", "Since 15m", show=False, id="logs.since-900"),
        Binding("4", "since(1800)", "Since 30m", show=False, id="logs.since-1800"),
        Binding("5", "since(3600)", "Since 1h", show=False, id="logs.since-3600"),
        Binding("ctrl+s", "prompt('save')", "Save", id="logs.prompt-save"),
    ]

    class LinesReady(Message):
        """The reader has lines waiting (posted once per drain, not per line)."""

        def __init__(self, stream: _Stream) -> None:
            super().__init__()
            self.stream = stream

    class StreamEnded(Message):
        def __init__(self, stream: _Stream, error: str) -> None:
            super().__init__()
            self.stream = stream
            self.error = error

    def __init__(
        self,
        backend: LogSource,
        request: LogRequest,
        title: str,
        *,
        containers: Sequence[str] = (),
        capacity: int = DEFAULT_CAPACITY,
        save_dir: Path | None = None,
        deck: DeckContext | None = None,
    ) -> None:
        super().__init__()
        self.deck = deck  # the cluster the pods are in (None: the deck's own)
        if not request.pods:
            raise ValueError(f"logs of {title!r}: no pods to read (is it running yet?)")
        self.backend = backend
        self.request = dataclasses.replace(request, follow=True, stop=None)
        self.title_text = title
        self.containers = tuple(containers)
        self.save_dir = save_dir or Path.cwd()
        self.buffer = LogBuffer(capacity)
        colours = PodColours(request.pods)
        self.view = LogView(self.buffer, pod_colours=colours, id="logs-view")
        self.stream = _Stream(capacity)
        self.paused = False
        self.search: SearchQuery | None = None
        self.search_hits = 0
        self.prompt_kind: PromptKind | None = None
        self.ended = ""  # why the stream ended ("" while it runs)
        self.notice = ""  # the last thing the screen has to say (a save, a bad input)
        self._drain_scheduled = False

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
        with Vertical():
            yield Static(self._header(), id="logs-header", markup=False)
            yield self.view
            yield Input(id="logs-prompt")
            yield StatusLine(id="logs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.view.focus()
        self._start()
        self._show_status()

    def on_unmount(self) -> None:
        self.stream.end()

    def _header(self) -> str:
        r = self.request
        parts = [f"Logs: {self.title_text}", f"{r.namespace}/{', '.join(r.pods)}"]
        if r.container:
            parts.append(f"container {r.container}")
        parts.append(f"tail {r.tail}" if r.tail is not None else "tail all")
        if r.since is not None:
            parts.append(f"since {since_text(r.since)}")
        if r.previous:
            parts.append("previous container")
        if r.timestamps:
            parts.append("timestamps")
        return printable(" · ".join(parts))  # names and the title quote a row or a command

    # -- the stream -----------------------------------------------------------------------------
    def _start(self) -> None:
        self.stream.end()
        self.stream = _Stream(self.buffer.capacity)
        if self.paused:
            self.stream.running.clear()
        self.ended = ""
        self.view.reset()
        self._read(self.stream, dataclasses.replace(self.request, stop=self.stream.stop))

    def _restart(self, request: LogRequest) -> None:
        """Read the stream again with ``request`` (an option changed)."""
        self.notice = ""
        self.request = request
        self.query_one("#logs-header", Static).update(self._header())
        self._start()
        self._show_status()

    @work(thread=True, group="logs-stream")
    def _read(self, stream: _Stream, request: LogRequest) -> None:
        """Runs in a thread: pull lines, hand them over in bulk, never touch widgets."""
        error = ""
        try:
            for line in self.backend.logs(request):
                if not stream.running.is_set():  # paused: stop reading; the backend holds back
                    stream.running.wait()
                if stream.cancelled:
                    break
                with stream.lock:
                    stream.pending.append(line)
                    stream.widest = max(stream.widest, len(line))
                    if len(stream.pending) > stream.capacity:  # the UI is far behind
                        excess = len(stream.pending) - stream.capacity
                        del stream.pending[:excess]
                        stream.skipped += excess
                    wake = not stream.wake_posted
                    stream.wake_posted = True
                if wake:
                    self.post_message(self.LinesReady(stream))
        except Exception as exc:  # the backend says what went wrong; show it, keep the screen
            error = str(exc) or type(exc).__name__
        if not stream.cancelled:
            self.post_message(self.StreamEnded(stream, error))

    def on_logs_screen_lines_ready(self, message: LinesReady) -> None:
        if message.stream is self.stream and not self._drain_scheduled:
            self._drain_scheduled = True
            self.set_timer(FLUSH_SECONDS, self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        lines, widest, skipped = self.stream.take()
        self.view.append(lines, widest, skipped)
        self._show_status()

    def on_logs_screen_stream_ended(self, message: StreamEnded) -> None:
        if message.stream is not self.stream:
            return
        self._drain()
        self.ended = message.error or "the stream ended (the pod's containers stopped)"
        self._show_status()

    def on_log_view_follow_changed(self, message: LogView.FollowChanged) -> None:
        self._show_status()

    # -- status ---------------------------------------------------------------------------------
    def status_text(self) -> str:
        view, buffer = self.view, self.buffer
        if self.paused:
            state = "PAUSED (p resumes)"
        elif view.following:
            state = "FOLLOWING"
        else:
            state = f"SCROLLED · {view.new_lines:,} new lines (end follows)"
        parts = [state, f"{buffer.total:,} lines"]
        if buffer.dropped:
            parts.append(f"{buffer.dropped:,} dropped (keeps {buffer.capacity:,})")
        if self.search is not None:
            where = f" at line {view.current_match + 1:,}" if view.current_match is not None else ""
            parts.append(f"/{self.search.text}: {self.search_hits:,} matches{where}")
        if view.wrap:
            parts.append("wrap")
        if self.ended:
            parts.append(self.ended)
        if self.notice:
            parts.append(self.notice)
        return " · ".join(parts)

    def _show_status(self) -> None:
        status = self.query_one("#logs-status", StatusLine)
        status.show(printable(self.status_text()))  # an ending quotes the backend's error
        status.set_class(bool(self.ended and self.ended.startswith("logs of")), "-problem")

    # -- actions --------------------------------------------------------------------------------
    def action_back(self) -> None:
        if self.prompt_kind is not None:
            self._close_prompt()
            return
        self.stream.end()
        self.dismiss()

    def action_toggle_follow(self) -> None:
        self.view.set_following(not self.view.following)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self.stream.running.clear()
        else:
            self.stream.running.set()
        self._show_status()

    def action_toggle_wrap(self) -> None:
        self.view.set_wrap(not self.view.wrap)
        self._show_status()

    def action_toggle_timestamps(self) -> None:
        self._restart(dataclasses.replace(self.request, timestamps=not self.request.timestamps))

    def action_toggle_previous(self) -> None:
        self._restart(dataclasses.replace(self.request, previous=not self.request.previous))

    def action_since(self, seconds: int) -> None:
        self._restart(
            dataclasses.replace(self.request, since=timedelta(seconds=seconds) if seconds else None)
        )

    def action_next_match(self) -> None:
        self._find(forward=True)

    def action_previous_match(self) -> None:
        self._find(forward=False)

    def _find(self, *, forward: bool) -> None:
        if self.search is None:
            self.notice = "no search yet: press / to search"
            self._show_status()
            return
        start = self.view.current_match
        if start is None:  # the first search starts from the top of the view
            start = self.view.top_line - 1 if forward else self.view.top_line
        found = self.buffer.find(self.search, start, forward=forward)
        self.notice = "" if found is not None else f"no line matches /{self.search.text}"
        if found is not None:
            self.view.show_line(found)
        self._show_status()

    # -- the prompt (search, tail, since, container, save) ---------------------------------------
    def action_prompt(self, kind: PromptKind) -> None:
        prompt = self.query_one("#logs-prompt", Input)
        self.prompt_kind = kind
        prompt.placeholder = PROMPTS[kind]
        if kind == "container" and self.containers:
            prompt.placeholder += f"; this pod has: {', '.join(self.containers)}"
        prompt.value = {
            "search": self.search.text if self.search else "",
            "tail": "" if self.request.tail is None else str(self.request.tail),
            "since": since_text(self.request.since),
            "container": self.request.container or "",
            "save": str(self._default_save_path()),
        }[kind]
        prompt.border_title = kind
        prompt.add_class("-shown")
        prompt.focus()

    def _close_prompt(self) -> None:
        self.prompt_kind = None
        self.query_one("#logs-prompt", Input).remove_class("-shown")
        self.view.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        kind, text = self.prompt_kind, event.value.strip()
        try:
            if kind == "search":
                self._search(text)
            elif kind == "tail":
                tail = None if text in ("", "all") else int(text)
                if tail is not None and tail < 0:
                    raise ValueError("tail: give a number of lines (0 or more) or 'all'")
                self._restart(dataclasses.replace(self.request, tail=tail))
            elif kind == "since":
                self._restart(
                    dataclasses.replace(self.request, since=parse_since(text) if text else None)
                )
            elif kind == "container":
                self._restart(dataclasses.replace(self.request, container=text or None))
            elif kind == "save":
                self._save(Path(text).expanduser() if text else self._default_save_path())
        except ValueError as exc:
            message = str(exc)
            if kind == "tail" and "invalid literal" in message:
                message = f"tail {text!r}: give a number of lines or 'all'"
            self.notice = message
            self._show_status()
            return
        self._close_prompt()

    def _search(self, text: str) -> None:
        self.search = SearchQuery.parse(text)
        self.search_hits = self.buffer.count(self.search)
        self.notice = ""
        self.view.set_query(self.search)
        self._find(forward=True)

    def _default_save_path(self) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.title_text)
        return self.save_dir / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}.log"

    def _save(self, path: Path) -> None:
        self.notice = f"saving {len(self.buffer):,} lines to {path}..."
        self._show_status()
        self._write_file(path, list(self.buffer.lines()))

    @work(thread=True, group="logs-save")
    def _write_file(self, path: Path, lines: list[str]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as sink:
                sink.writelines(line + "\n" for line in lines)
            notice = f"saved {len(lines):,} lines to {path}"
        except OSError as exc:
            notice = f"could not save to {path}: {exc.strerror or exc}"
        self.app.call_from_thread(self._saved, notice)

    def _saved(self, notice: str) -> None:
        self.notice = notice
        self._show_status()
