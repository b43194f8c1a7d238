"""A pod's log line in the deck: SGR colours decoded, every other escape shown, NO_COLOR obeyed."""

from __future__ import annotations

from rich.color import Color

from console.tui.widgets.log_ansi import colours_wanted, log_segments

LINE = "\x1b[1;31mERROR\x1b[0m shape \x1b[2J\x1b[H\x07 done"


def test_colours_become_styles_and_other_escapes_are_shown_as_text() -> None:
    plain, segments = log_segments(LINE, colours=True)
    assert plain == "ERROR shape \\x1b[2J\\x1b[H\\x07 done"
    first = segments[0]
    assert first.text == "ERROR"
    assert first.style is not None
    assert first.style.color == Color.parse("color(1)")
    assert first.style.bold
    assert all("\x1b" not in s.text and "\x07" not in s.text for s in segments)


def test_no_color_drops_the_colours_and_keeps_the_text() -> None:
    assert not colours_wanted({"NO_COLOR": "1"})
    assert colours_wanted({})
    plain, segments = log_segments(LINE, colours=False)
    assert plain == "ERROR shape \\x1b[2J\\x1b[H\\x07 done"
    assert [s.text for s in segments] == [plain]
    assert all(s.style is None for s in segments)


def test_tabs_are_expanded_and_a_plain_line_is_one_segment() -> None:
    plain, segments = log_segments("a\tb", colours=True)
    assert plain == "a       b"
    assert len(segments) == 1
