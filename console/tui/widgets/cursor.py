"""The item under a table's cursor, for screens that keep their rows beside a DataTable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from textual.widgets import DataTable

Item = TypeVar("Item")


def item_under_cursor(table: DataTable[Any], items: Sequence[Item]) -> Item | None:
    """``items[table.cursor_row]``, or None when the table is empty or the cursor is off it."""
    if not items or not 0 <= table.cursor_row < len(items):
        return None
    return items[table.cursor_row]
