"""The Fleet table: a line-API widget drawing only the visible rows of a filtered, sorted list.

Textual's DataTable keeps a widget-side copy of every cell and re-lays-out on changes: 5,000
rows took 1.7 s to load and a filter over them 1.1 s (FIELD-NOTES). Here the screen hands over
the already filtered and sorted list of ``FleetRow`` and the table renders the ~50 lines that
fit, so a filter keystroke costs the filter itself plus one screen of lines.

The first line is the header (it never scrolls away); a two-cell gutter shows ``*`` on marked
rows, so marks read without colour (``NO_COLOR``) as well as with it. The columns that fit the
width are chosen by priority (``console.views.fleet_columns``); NAME stays put while the rest
scrolls sideways, and ``wide`` shows every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from console.model import DeploymentState
from console.tui.widgets.line_table import LineTable, cursor_bindings
from console.views.fleet_columns import GAP, GUTTER, ColumnFit, fit_columns
from console.views.fleet_rows import COLUMN_KEYS, COLUMNS, FleetRow, RowKey, SortOrder

STATUS_COLUMN = COLUMN_KEYS.index("status")


def fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


class FleetTable(LineTable):
    """Rows of deployments with a cursor, marks and a sort indicator; no copy of the data."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "fleet-table--header",
        "fleet-table--cursor",
        "fleet-table--marked",
        "fleet-table--failed",
        "fleet-table--degraded",
        "fleet-table--progressing",
        "fleet-table--paused",
        "fleet-table--stale",
    }
    DEFAULT_CSS = """
    FleetTable { height: 1fr; scrollbar-size-horizontal: 1; }
    FleetTable > .fleet-table--header { text-style: bold; background: $panel; }
    FleetTable > .fleet-table--cursor { background: $accent 60%; text-style: reverse; }
    FleetTable:focus > .fleet-table--cursor { background: $accent; text-style: reverse; }
    FleetTable > .fleet-table--marked { color: $warning; text-style: bold; }
    FleetTable > .fleet-table--failed { color: $error; text-style: bold; }
    FleetTable > .fleet-table--degraded { color: $warning; }
    FleetTable > .fleet-table--progressing { color: $secondary; }
    FleetTable > .fleet-table--paused { color: $text-muted; }
    FleetTable > .fleet-table--stale { color: $text-muted; text-style: italic; }
    """
    BINDINGS: ClassVar[list[BindingType]] = cursor_bindings("fleet-table")

    class HeaderClicked(Message):
        """A column title was clicked: the screen sorts by it."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: Sequence[FleetRow] = []
        self._marks: set[RowKey] = set()
        self._widths: tuple[int, ...] = tuple(len(c.title) + 1 for c in COLUMNS)
        self._fit = ColumnFit(tuple(range(len(COLUMNS))), self._widths)
        self.single_namespace = False  # NAMESPACE gives way first: it says nothing then
        self.several_clusters = False  # CLUSTER is drawn only then
        self.wide = False  # every column, scrolled sideways (k9s' wide view)
        self._order = SortOrder()
        self._strips: dict[tuple[RowKey, bool, bool], Strip] = {}

    # -- what the screen calls ----------------------------------------------------------------
    @property
    def view(self) -> Sequence[FleetRow]:
        return self._view

    @property
    def cursor_row(self) -> FleetRow | None:
        return self._view[self.cursor] if 0 <= self.cursor < len(self._view) else None

    def show(
        self,
        view: Sequence[FleetRow],
        *,
        cursor: int,
        marks: set[RowKey],
        widths: tuple[int, ...],
        order: SortOrder,
        single_namespace: bool = False,
        several_clusters: bool = False,
    ) -> None:
        """Replace what is shown; the scroll offset stays unless the cursor would leave view."""
        self._view = view
        self._marks = marks
        # One cell more than the widest value for the header's sort arrow.
        self._widths = tuple(max(w, len(c.title) + 1) for w, c in zip(widths, COLUMNS, strict=True))
        self._order = order
        self.single_namespace = single_namespace
        self.several_clusters = several_clusters
        self.cursor = max(0, min(cursor, len(view) - 1))
        self._refit()
        self.keep_cursor_visible()

    def set_wide(self, wide: bool) -> None:
        self.wide = wide
        self._refit()

    def _refit(self) -> None:
        """Choose the columns for the current width; the strips drawn before are stale."""
        # The vertical scrollbar's cells reserved: it appears after the fit, without a resize.
        available = self.size.width - self.styles.scrollbar_size_vertical
        self._fit = fit_columns(
            self._widths,
            available,
            single_namespace=self.single_namespace,
            wide=self.wide,
            several_clusters=self.several_clusters,
        )
        self._strips.clear()
        self.virtual_size = Size(self._fit.line_width, len(self._view) + 1)
        self.refresh()

    def on_resize(self, _: events.Resize) -> None:
        self._refit()

    def refresh_marks(self, marks: set[RowKey]) -> None:
        self._marks = marks
        self._strips.clear()
        self.refresh()

    def row_count(self) -> int:
        return len(self._view)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            pinned = event.x < self._fit.pinned_width  # NAME does not scroll
            column = self._column_at(event.x if pinned else event.x + int(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderClicked(column))
            return
        self.move_cursor(int(self.scroll_y) + event.y - 1)

    # -- layout -------------------------------------------------------------------------------
    @property
    def columns_shown(self) -> tuple[str, ...]:
        """The keys of the columns drawn now (tests and the help read it)."""
        return tuple(COLUMN_KEYS[i] for i in self._fit.shown)

    def _column_at(self, x: int) -> str | None:
        position = GUTTER
        for width, index in zip(self._fit.widths, self._fit.shown, strict=True):
            if position <= x < position + width + GAP:
                return COLUMN_KEYS[index]
            position += width + GAP
        return None

    def forget_lines(self) -> None:
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.style_of("")
        if y == 0:
            strip = self._header_strip()
        else:
            index = scroll_y + y - 1
            if index >= len(self._view):
                return Strip.blank(width, base)
            strip = self._row_strip(index)
        pinned = min(self._fit.pinned_width, width)
        if not scroll_x:
            return strip.crop_extend(0, width, base)
        # NAME stays put: the pinned cells, then the rest from the scroll offset on.
        head = strip.crop_extend(0, pinned, base)
        tail = strip.crop_extend(pinned + scroll_x, scroll_x + width, base)
        return Strip.join([head, tail])

    def _header_strip(self) -> Strip:
        titles = []
        for index, width in zip(self._fit.shown, self._fit.widths, strict=True):
            column = COLUMNS[index]
            title = column.title
            if column.key == self._order.column:
                title += "▼" if self._order.descending else "▲"
            titles.append(fit(title, width, column.numeric))
        text = " " * GUTTER + (" " * GAP).join(titles)
        style = self.style_of("") + self.style_of("fleet-table--header")
        return Strip([Segment(text, style)], len(text))

    def _row_strip(self, index: int) -> Strip:
        row = self._view[index]
        selected = index == self.cursor
        marked = row.key in self._marks
        cache_key = (row.key, selected, marked)
        strip = self._strips.get(cache_key)
        if strip is not None:
            return strip
        style = self.style_of("")
        if row.stale:  # its cluster is not answering (the CLUSTER cell says so in words)
            style += self.style_of("fleet-table--stale")
        if marked:
            style += self.style_of("fleet-table--marked")
        shown = self._fit.shown
        cells = [
            fit(row.cells[index], width, COLUMNS[index].numeric)
            for index, width in zip(shown, self._fit.widths, strict=True)
        ]
        status = shown.index(STATUS_COLUMN)  # STATUS never gives way
        gap = " " * GAP
        before = ("* " if marked else "  ") + gap.join(cells[:status]) + gap
        after = gap + gap.join(cells[status + 1 :])
        status_style = style + self._state_style(row.state)
        segments = [
            Segment(before, style),
            Segment(cells[status], status_style),
            Segment(after, style),
        ]
        if selected:
            cursor = self.style_of("fleet-table--cursor")
            segments = [Segment(s.text, (s.style or Style()) + cursor) for s in segments]
        strip = Strip(segments, self._fit.line_width)
        self._strips[cache_key] = strip
        return strip

    def _state_style(self, state: DeploymentState) -> Style:
        component = {
            DeploymentState.FAILED: "fleet-table--failed",
            DeploymentState.DEGRADED: "fleet-table--degraded",
            DeploymentState.PROGRESSING: "fleet-table--progressing",
            DeploymentState.PAUSED: "fleet-table--paused",
        }.get(state)
        return self.style_of(component) if component else Style()
