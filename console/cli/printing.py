"""How the CLI prints, for every command in one place: ``-o table|wide|json|yaml|name`` and
``--no-headers`` of a listing, kubectl's ``-w`` (a table, then a line per change), results,
and log lines (ANSI colours kept on a terminal, stripped otherwise).

A command describes its listing once (:class:`Listing`: its columns and what ``-o name`` calls
an item); this module decides what each format prints. JSON and YAML are the same data
(:func:`console.views.format.to_json`): YAML is for people who read it, JSON for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TextIO, TypeVar

from console.views.format import SGR, printable, printable_log_line, to_json

Item = TypeVar("Item")


class OutputError(ValueError):
    """An output format the listing cannot give (exit 2)."""


@dataclass(frozen=True)
class Output:
    """What the user asked to see: ``-o`` and ``--no-headers``."""

    format: str = "table"  # table | wide | json | yaml | name
    headers: bool = True

    @property
    def structured(self) -> bool:
        return self.format in ("json", "yaml")


def output_of(args: argparse.Namespace) -> Output:
    """``-o`` (``--json``) and ``--no-headers`` as parsed."""
    return Output(args.output, headers=not args.no_headers)


@dataclass(frozen=True)
class Column(Generic[Item]):
    header: str
    cell: Callable[[Item], object]
    wide: bool = False  # only with -o wide


@dataclass(frozen=True)
class Listing(Generic[Item]):
    """A command's items as a table (its columns), as ``KIND/NAME`` lines (``kind`` and
    ``name``; ``kind`` "" when the items have no names), and as data (``data``, default the
    item's fields)."""

    columns: Sequence[Column[Item]]
    kind: str = ""
    name: Callable[[Item], str] | None = None
    data: Callable[[Item], object] = to_json

    def headers(self, output: Output) -> list[str]:
        return [c.header for c in self._shown(output)]

    def cells(self, item: Item, output: Output) -> list[object]:
        return [c.cell(item) for c in self._shown(output)]

    def _shown(self, output: Output) -> list[Column[Item]]:
        return [c for c in self.columns if output.format == "wide" or not c.wide]

    def qualified_name(self, item: Item) -> str:
        if self.name is None or not self.kind:
            raise OutputError("-o name: these have no names; use -o json or -o yaml")
        return f"{self.kind}/{self.name(item)}"


def dump(value: object, output: Output, out: TextIO | None = None) -> None:
    """``value`` as JSON (indented, sorted keys) or YAML (the same data, block style)."""
    out = out or sys.stdout
    data = to_json(value)
    if output.format == "yaml":
        import yaml

        out.write(
            yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)
        )
    else:
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_json(value: Any, out: TextIO | None = None) -> None:
    dump(value, Output("json"), out)


def print_json_line(value: Any, out: TextIO | None = None) -> None:
    """One JSON object per line: a stream a script reads line by line (``--watch``)."""
    (out or sys.stdout).write(json.dumps(to_json(value), sort_keys=True) + "\n")
    (out or sys.stdout).flush()


def print_items(
    items: Sequence[Item], listing: Listing[Item], output: Output, out: TextIO | None = None
) -> list[int]:
    """Print ``items`` as ``output`` asks; returns the table's column widths (for
    :func:`print_item_line` to keep a watch's later lines aligned), [] for other formats."""
    out = out or sys.stdout
    if output.structured:
        dump([listing.data(i) for i in items], output, out)
        return []
    if output.format == "name":
        for item in items:
            out.write(printable(listing.qualified_name(item)) + "\n")
        return []
    rows = [listing.cells(i, output) for i in items]
    return print_table(listing.headers(output), rows, out, with_headers=output.headers)


def print_item_line(
    item: Item,
    listing: Listing[Item],
    output: Output,
    widths: Sequence[int],
    out: TextIO | None = None,
) -> None:
    """One item as ``-w`` prints a change: a table row aligned with the first table, a name,
    or one JSON object (YAML: one document)."""
    out = out or sys.stdout
    if output.format == "json":
        print_json_line(listing.data(item), out)
        return
    if output.format == "yaml":
        out.write("---\n")
        dump(listing.data(item), output, out)
    elif output.format == "name":
        out.write(printable(listing.qualified_name(item)) + "\n")
    else:
        out.write(_line(_cells(listing.cells(item, output)), widths))
    out.flush()


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: TextIO | None = None,
    *,
    with_headers: bool = True,
) -> list[int]:
    """Aligned columns two spaces apart, every cell printable; returns the widths."""
    out = out or sys.stdout
    header_cells = [printable(h) for h in headers]
    cells = [_cells(r) for r in rows]
    widths = [max(len(row[i]) for row in [header_cells, *cells]) for i in range(len(headers))]
    for row in ([header_cells] if with_headers else []) + cells:
        out.write(_line(row, widths))
    return widths


def _cells(row: Sequence[Any]) -> list[str]:
    return ["" if c is None else printable(c) for c in row]


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [c.ljust(w) for c, w in zip(cells, widths, strict=False)]
    return "  ".join(padded + list(cells[len(widths) :])).rstrip() + "\n"


# -- log lines --------------------------------------------------------------------------------
_RESET = "\x1b[0m"


def colours_wanted(stream: TextIO | None = None) -> bool:
    """kubectl's rule: colours on a terminal, none in a pipe or a file, none with NO_COLOR."""
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and stream.isatty()


def log_line(line: str, *, colours: bool) -> str:
    """A pod's line as the CLI prints it (:func:`printable_log_line`), its colours switched
    off at its end so that none bleeds into the next line or the prompt."""
    shown = printable_log_line(line, colours=colours)
    return shown + _RESET if colours and SGR.search(line) else shown
