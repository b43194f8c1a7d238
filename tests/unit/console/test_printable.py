"""Text from a backend, an agent or a stored row never reaches the terminal raw: the CLI's
tables and the deck's fleet table show control characters escaped, visibly."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult

from console.cli.printing import print_table
from console.model import DeploymentState, ModelDeployment
from console.tui.widgets.fleet_table import FleetTable
from console.tui.widgets.release import deploy_request
from console.views.fleet_rows import (
    COLUMN_KEYS,
    SortOrder,
    build_rows,
    column_widths,
    status_text,
)
from console.views.format import printable

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CLEAR_SCREEN = "\x1b[2J"
# Every code point a terminal may act on: C0, DEL, C1 (0x9b is a one-byte CSI).
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]


def hostile(name: str = f"evil{CLEAR_SCREEN}\nrow", reason: str = "") -> ModelDeployment:
    return ModelDeployment(
        name=name,
        namespace="models",
        model="digits\n",
        version="1",
        desired=1,
        ready=0,
        updated=0,
        available=0,
        state=DeploymentState.FAILED,
        reason=reason or f"invalid model name 'digits\\n'{CLEAR_SCREEN}\x07\x9b31m",
        revision=1,
        created=NOW - timedelta(minutes=5),
    )


def assert_no_control(text: str) -> None:
    found = [hex(ord(c)) for c in text if c in CONTROLS]
    assert not found, f"control characters reach the terminal: {found} in {text!r}"


def test_printable_escapes_newlines_escapes_and_c1_controls_visibly() -> None:
    assert printable("a\nb") == "a\\nb"
    assert printable(f"x{CLEAR_SCREEN}y") == "x\\x1b[2Jy"
    assert printable("tab\there\rcr") == "tab\\there\\rcr"
    assert printable("del\x7f csi\x9b nul\x00") == "del\\x7f csi\\x9b nul\\x00"
    assert printable("bidi \u202egnp.exe") == "bidi \\u202egnp.exe"
    for char in CONTROLS:
        assert_no_control(printable(f"before{char}after"))


def test_printable_leaves_ordinary_text_and_other_scripts_as_they_are() -> None:
    for text in ("digits-a", "Failed: ProgressDeadlineExceeded", "café ✓ 数字", ""):
        assert printable(text) == text
    assert printable(42) == "42"


def test_a_table_shows_a_hostile_name_escaped_on_its_own_one_row() -> None:
    out = io.StringIO()
    print_table(
        ["NAME", "STATUS"],
        [["good", "Available"], [f"evil{CLEAR_SCREEN}\nforged", "Failed: bad\x1b]0;title\x07"]],
        out,
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # the newline did not forge a row
    assert "evil\\x1b[2J\\nforged" in lines[2]
    assert "Failed: bad\\x1b]0;title\\x07" in lines[2]
    assert_no_control(out.getvalue().replace("\n", ""))


def test_rich_text_alone_would_send_an_escape_sequence_to_the_terminal() -> None:
    """Why the deck escapes names itself: Rich (and Textual) strip only a few control codes,
    ESC and C1 pass."""
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=80)
    console.print(Text(f"name{CLEAR_SCREEN}"))
    assert CLEAR_SCREEN in console.file.getvalue()  # type: ignore[attr-defined]


def test_fleet_rows_and_status_show_names_and_reasons_escaped() -> None:
    (row,) = build_rows([hostile()], now=NOW)
    for cell in row.cells:
        assert_no_control(cell)
    assert row.cells[COLUMN_KEYS.index("name")] == "evil\\x1b[2J\\nrow"
    assert row.cells[COLUMN_KEYS.index("model")] == "digits\\n"
    assert "\\x1b[2J\\x07\\x9b31m" in status_text(row.deployment)
    assert_no_control(status_text(row.deployment))


class FleetTableHost(App[None]):
    def compose(self) -> ComposeResult:
        yield FleetTable(id="fleet")


def test_the_deck_fleet_table_draws_a_hostile_row_escaped() -> None:
    rows = build_rows([hostile(), hostile(name="plain", reason="fine")], now=NOW)

    async def scenario() -> list[str]:
        app = FleetTableHost()
        async with app.run_test(size=(200, 10)) as pilot:
            table = app.query_one(FleetTable)
            table.show(rows, cursor=0, marks=set(), widths=column_widths(rows), order=SortOrder())
            await pilot.pause()
            return [table.render_line(y).text for y in range(len(rows) + 1)]

    drawn = asyncio.run(scenario())
    for line in drawn:
        assert_no_control(line)
    hostile_line = next(line for line in drawn if line.lstrip().startswith("evil"))
    assert "evil\\x1b[2J\\nrow" in hostile_line
    assert "digits\\n" in hostile_line


def test_the_deploy_dialog_refuses_a_name_or_namespace_that_breaks_the_rule() -> None:
    for name, namespace in (("Digits", "default"), ("a/b", ""), ("ok", "../../x"), ("ok\n", "")):
        problem = deploy_request(name, "digits", 1, namespace, "")
        assert isinstance(problem, str)
        assert "a DNS-1123 label" in problem
        assert_no_control(problem)
    assert not isinstance(deploy_request("digits-a", "digits", 1, "models", "2"), str)
