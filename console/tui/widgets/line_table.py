"""What the deck's line-API tables share (the Fleet table, the Changes table): a cursor over a
list the screen hands over, the keys that move it, the scroll that keeps it in view, and the
component styles resolved once per theme. Each table draws its own lines (``render_line``)."""

from __future__ import annotations

from rich.style import Style
from textual.binding import Binding, BindingType
from textual.scroll_view import ScrollView


def cursor_bindings(prefix: str) -> list[BindingType]:
    """The keys that move a table's cursor and scroll it (vi's and the arrows), with ids under
    ``prefix`` (``fleet-table.cursor_down``) for keymap.toml."""
    keys = [
        ("down,j", "cursor_down", "Down"),
        ("up,k", "cursor_up", "Up"),
        ("pagedown,ctrl+f", "page_down", "Page down"),
        ("pageup,ctrl+b", "page_up", "Page up"),
        ("home,g", "first", "First"),
        ("end,G", "last", "Last"),
        ("left", "scroll_left", "Left"),
        ("right", "scroll_right", "Right"),
    ]
    return [
        Binding(key, action, text, show=False, id=f"{prefix}.{action}")
        for key, action, text in keys
    ]


class LineTable(ScrollView, can_focus=True):
    """A header line and one line per row below it; ``cursor`` is the row's index."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._styles: dict[str, Style] = {}  # resolved once per theme, not once per line
        self.cursor = 0

    def row_count(self) -> int:
        raise NotImplementedError

    def cursor_moved(self) -> None:
        """Called after the cursor moved to another row (the Changes table says so)."""

    def move_cursor(self, index: int) -> None:
        count = self.row_count()
        if not count:
            return
        index = max(0, min(index, count - 1))
        if index != self.cursor:
            self.cursor = index
            self.refresh()
            self.cursor_moved()
        self.keep_cursor_visible()

    # -- keys ---------------------------------------------------------------------------------
    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.page)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count() - 1)

    # -- layout -------------------------------------------------------------------------------
    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def keep_cursor_visible(self) -> None:
        rows_shown = max(1, self.scrollable_content_region.height - 1)  # minus the header
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows_shown:
            self.scroll_to(y=self.cursor - rows_shown + 1, animate=False, immediate=True)

    # -- styles -------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self.forget_lines()

    def forget_lines(self) -> None:
        """The lines drawn before are stale (a table that caches them clears them here)."""

    def style_of(self, name: str) -> Style:
        """A component's style ("" for the widget's own), resolved once until the CSS changes."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = (
                self.get_component_rich_style(name) if name else self.rich_style
            )
        return style
