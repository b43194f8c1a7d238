"""A log view over a ``LogBuffer``: renders only the visible lines (Textual's line API).

Follow keeps the newest line in view; scrolling up stops it, and the view then counts the lines
that arrived since ("N new lines") without re-rendering for them. Batches are appended on the UI
thread by the screen, already coalesced; nothing here parses or waits. A pod's colours are drawn
as colours (``log_ansi``: none with ``NO_COLOR``); any other control character is shown escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.widgets.log_ansi import colours_wanted, log_segments
from console.views.log_buffer import LogBuffer, PodColours, SearchQuery, split_pod_prefix

MATCH_STYLE = Style(reverse=True)
CURRENT_MATCH_STYLE = Style(reverse=True, bold=True, underline=True)


class LogView(ScrollView, can_focus=True):
    """The lines of one stream; ``following`` pins the view to the newest line."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        overflow: auto auto;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="log-view.scroll_down"),
        Binding("k", "scroll_up", "Up", show=False, id="log-view.scroll_up"),
        Binding("g", "scroll_home", "Top", show=False, id="log-view.scroll_home"),
        Binding("G", "scroll_end", "End (follow)", show=False, id="log-view.scroll_end"),
        Binding("ctrl+u", "page_up", "Page up", show=False, id="log-view.page_up"),
        Binding("ctrl+d", "page_down", "Page down", show=False, id="log-view.page_down"),
    ]

    class FollowChanged(Message):
        """Follow turned on or off (by the user scrolling, or the screen)."""

        def __init__(self, view: LogView, following: bool) -> None:
            super().__init__()
            self.view = view
            self.following = following

    def __init__(
        self,
        buffer: LogBuffer,
        *,
        pod_colours: PodColours | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.buffer = buffer
        self.pod_colours = pod_colours or PodColours()
        self.following = True
        self.wrap = False
        self.query_: SearchQuery | None = None
        self.current_match: int | None = None  # absolute line number
        self._seen_total = 0  # buffer.total when follow last stopped
        self._widest = 0
        self._jumping = False
        self._base_style: Style | None = None
        self.colours = colours_wanted()  # read once: NO_COLOR does not change under a deck
        self._wrapped: tuple[tuple[int, int, int, int, bool], list[Strip]] | None = None

    # -- what the screen calls ------------------------------------------------------------------
    @property
    def new_lines(self) -> int:
        """Lines that arrived since follow stopped (0 while following)."""
        return 0 if self.following else self.buffer.total - self._seen_total

    def append(self, lines: Sequence[str], widest: int, skipped: int = 0) -> None:
        """Add a batch (``widest``: its longest line, measured by the producer thread;
        ``skipped``: lines before it the producer had to drop)."""
        if not lines and not skipped:
            return
        first_before = self.buffer.first
        self.buffer.extend(lines, skipped)
        self._widest = max(self._widest, widest)
        self.virtual_size = Size(self._widest, len(self.buffer))
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
            self.refresh()
            return
        shifted = self.buffer.first - first_before
        if shifted:  # old lines fell off the front: keep the same lines in view
            self.scroll_to(
                y=max(0, self.scroll_y - shifted), animate=False, immediate=True, force=True
            )
            self.refresh()

    def reset(self) -> None:
        """Empty the view for a new stream (new since/tail/container...)."""
        self.buffer.reset()
        self._widest = 0
        self._seen_total = 0
        self.current_match = None
        self.virtual_size = Size(0, 0)
        self.set_following(True)
        self.refresh()

    def set_following(self, following: bool) -> None:
        if following == self.following:
            return
        self.following = following
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
            self.refresh()
        else:
            self._seen_total = self.buffer.total
        self.post_message(self.FollowChanged(self, following))

    def set_wrap(self, wrap: bool) -> None:
        self.wrap = wrap
        self._wrapped = None
        if wrap:
            self.scroll_to(x=0, animate=False, immediate=True, force=True)
        self.refresh()

    def set_query(self, query: SearchQuery | None) -> None:
        self.query_ = query
        self.current_match = None
        self._wrapped = None
        self.refresh()

    def show_line(self, absolute: int) -> None:
        """Bring a line (a search hit) into the middle of the view; stops follow."""
        self.set_following(False)
        self.current_match = absolute
        self._wrapped = None
        row = absolute - self.buffer.first
        self._jumping = True  # a jump to the last lines is not the user scrolling down to follow
        try:
            y = max(0, row - self.size.height // 2)
            self.scroll_to(y=y, animate=False, immediate=True, force=True)
        finally:
            self._jumping = False
        self.refresh()

    @property
    def top_line(self) -> int:
        """The absolute number of the first line in view."""
        return self.buffer.first + round(self.scroll_y)

    # -- scrolling by the user stops follow; reaching the end resumes it ------------------------
    def _user_scrolled_up(self) -> None:
        if self.following and self.buffer.total > self.size.height:
            self.set_following(False)

    def action_scroll_up(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._user_scrolled_up()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.set_following(True)
        super().action_scroll_end()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._user_scrolled_up()
        super()._on_mouse_scroll_up(event)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if (
            not self.following
            and not self._jumping
            and new_value > old_value
            and new_value >= self.max_scroll_y > 0
        ):
            self.set_following(True)  # scrolled back down to the newest line

    # -- rendering ------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None

    @property
    def base_style(self) -> Style:
        """The widget's style, worked out once per style change (not once per line)."""
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.base_style
        if self.wrap:
            key = (self.buffer.total, self.top_line, width, self.size.height, self.following)
            if self._wrapped is None or self._wrapped[0] != key:  # one layout per frame
                self._wrapped = (key, self._wrapped_rows(width, base))
            rows = self._wrapped[1]
            return rows[y] if y < len(rows) else Strip.blank(width, base)
        absolute = self.top_line + y
        if not self.buffer.first <= absolute < self.buffer.total:
            return Strip.blank(width, base)
        scroll_x = round(self.scroll_x)
        return self._strip(absolute, base).crop_extend(scroll_x, scroll_x + width, base)

    def _wrapped_rows(self, width: int, base: Style) -> list[Strip]:
        """The rows in view with long lines wrapped: from the bottom while following (the newest
        line is always whole), else from the line at the top of the view."""
        height = self.size.height
        blank = Strip.blank(width, base)
        rows: list[Strip] = []
        if self.following:
            absolute = self.buffer.total - 1
            while absolute >= self.buffer.first and len(rows) < height:
                rows[:0] = self._pieces(absolute, width, base)
                absolute -= 1
            rows = rows[-height:]
        else:
            absolute = self.top_line
            while absolute < self.buffer.total and len(rows) < height:
                rows.extend(self._pieces(absolute, width, base))
                absolute += 1
        rows = rows[:height]
        return rows + [blank] * (height - len(rows))

    def _pieces(self, absolute: int, width: int, base: Style) -> list[Strip]:
        strip = self._strip(absolute, base)
        length = max(1, strip.cell_length)
        step = max(1, width)
        return [strip.crop_extend(start, start + width, base) for start in range(0, length, step)]

    def _strip(self, absolute: int, base: Style) -> Strip:
        pod, text = split_pod_prefix(self.buffer[absolute])
        segments: list[Segment] = []
        if pod:
            segments.append(Segment(f"[{pod}] ", base + Style(color=self.pod_colours(pod))))
        plain, pieces = log_segments(text, colours=self.colours)
        segments.extend(self._highlighted(plain, pieces, base, absolute))
        # Not cached: a frame renders only the rows in view, and cached strips would live long
        # enough to reach the oldest GC generation, making its (UI-stalling) collections slower.
        return Strip(segments)

    def _highlighted(
        self, plain: str, pieces: list[Segment], base: Style, absolute: int
    ) -> list[Segment]:
        """The line's pieces on the widget's style, search matches marked over the pod's own
        colours (a match may cross a colour change)."""
        styled = [Segment(p.text, base + p.style if p.style else base) for p in pieces]
        spans = self.query_.spans(plain) if self.query_ is not None else []
        if not spans:
            return styled
        mark = CURRENT_MATCH_STYLE if absolute == self.current_match else MATCH_STYLE
        segments: list[Segment] = []
        at = 0  # where this piece starts in ``plain``
        for piece in styled:
            end = at + len(piece.text)
            cuts = sorted({at, end, *(c for span in spans for c in span if at < c < end)})
            for start, stop in pairwise(cuts):
                matched = any(s <= start and stop <= e for s, e in spans)
                style = (piece.style or base) + mark if matched else piece.style
                segments.append(Segment(piece.text[start - at : stop - at], style))
            at = end
        return segments
