"""The Changes table: a line-API widget, as the Fleet table, drawing only the visible rows.

Textual's DataTable copies every cell and lays them out again on each change: 500 rows cost
~0.2 s to replace (bench/README.md, "Deck, Fleet screen"), far over a filter keystroke's 50 ms.
Here the screen hands over the filtered list of ``ChangeRow`` and the table renders the lines
that fit. Columns are as wide as their widest value among the rows, each capped; the first line
is the header. A change followed by a regression is drawn in the error colour and says so in
its EFFECT cell (readable without colour); one made outside fleetdeck says so in WHO.
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

from console.changes.model import Kind
from console.tui.widgets.line_table import LineTable, cursor_bindings
from console.views.changes import HEADERS, ChangeRow

# The widest each column gets (in HEADERS' order: ID, TIME, KIND, WHO, DEPLOYMENTS, EFFECT,
# WHAT, FROM, TO).
CAPS = (7, 12, 9, 16, 32, 44, 48, 22, 22)
GAP = 2
MAX_KEPT_LINES = 2000  # rows' drawn lines kept between shows (each ~1 KB with its caches)


def fit(text: str, width: int) -> str:
    return text[: max(0, width - 1)] + "…" if len(text) > width else text.ljust(width)


class ChangesTable(LineTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "changes-table--header",
        "changes-table--cursor",
        "changes-table--regression",
        "changes-table--outside",
        "changes-table--warning",
    }
    DEFAULT_CSS = """
    ChangesTable { height: 1fr; scrollbar-size-horizontal: 1; }
    ChangesTable > .changes-table--header { text-style: bold; background: $panel; }
    ChangesTable > .changes-table--cursor { background: $accent 60%; text-style: reverse; }
    ChangesTable:focus > .changes-table--cursor { background: $accent; text-style: reverse; }
    ChangesTable > .changes-table--regression { color: $error; text-style: bold; }
    ChangesTable > .changes-table--outside { color: $warning; }
    ChangesTable > .changes-table--warning { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = cursor_bindings("changes-table")

    class Highlighted(Message):
        """The cursor moved to another change (or the rows changed under it)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: Sequence[ChangeRow] = []
        self._widths: tuple[int, ...] = tuple(len(h) for h in HEADERS)
        # By change id and cursor: the row drawn (a row rebuilt with new cells is drawn again)
        # and its line.
        self._strips: dict[tuple[str, bool], tuple[ChangeRow, Strip]] = {}

    @property
    def rows(self) -> Sequence[ChangeRow]:
        return self._rows

    @property
    def cursor_row(self) -> ChangeRow | None:
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def show(self, rows: Sequence[ChangeRow], keep: str | None = None) -> None:
        """Replace the rows; the cursor stays on the change ``keep`` when it is still there."""
        self._rows = rows
        widths = [len(h) for h in HEADERS]
        for row in rows:
            for i, cell in enumerate(row.cells):
                if len(cell) > widths[i]:
                    widths[i] = len(cell)
        fitted = tuple(min(w, cap) for w, cap in zip(widths, CAPS, strict=True))
        # A row's line depends on the widths (and the cursor): while they stay (a filter over
        # a large fleet fills every column to its cap), the lines drawn before are drawn again.
        if fitted != self._widths or len(self._strips) > MAX_KEPT_LINES:
            self._strips.clear()
        self._widths = fitted
        index = next((i for i, r in enumerate(rows) if r.change.id == keep), None)
        self.cursor = index if index is not None else max(0, min(self.cursor, len(rows) - 1))
        self.virtual_size = Size(sum(self._widths) + GAP * len(self._widths), len(rows) + 1)
        self.keep_cursor_visible()
        self.refresh()
        self.post_message(self.Highlighted())

    def row_count(self) -> int:
        return len(self._rows)

    def cursor_moved(self) -> None:
        self.post_message(self.Highlighted())

    def on_click(self, event: events.Click) -> None:
        if event.y > 0:
            self.move_cursor(int(self.scroll_y) + event.y - 1)

    def on_resize(self, _: events.Resize) -> None:
        self.keep_cursor_visible()

    # -- drawing ------------------------------------------------------------------------------
    def forget_lines(self) -> None:
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._line(HEADERS, self.style_of("") + self.style_of("changes-table--header"))
        else:
            index = scroll_y + y - 1
            if index >= len(self._rows):
                return Strip.blank(width, self.style_of(""))
            strip = self._row_strip(index)
        return strip.crop_extend(scroll_x, scroll_x + width, self.style_of(""))

    def _line(self, cells: Sequence[str], style: Style) -> Strip:
        text = (" " * GAP).join(fit(c, w) for c, w in zip(cells, self._widths, strict=True))
        return Strip([Segment(text, style)], len(text))

    def _row_strip(self, index: int) -> Strip:
        row = self._rows[index]
        selected = index == self.cursor
        cache_key = (row.change.id, selected)
        kept = self._strips.get(cache_key)
        if kept is not None and kept[0] is row:
            return kept[1]
        style = self.style_of("")
        if row.regressed:
            style += self.style_of("changes-table--regression")
        elif row.change.kind is Kind.WARNING:
            style += self.style_of("changes-table--warning")
        elif not row.change.via_fleetdeck:
            style += self.style_of("changes-table--outside")
        if selected:
            style += self.style_of("changes-table--cursor")
        strip = self._line(row.cells, style)
        self._strips[cache_key] = (row, strip)
        return strip
