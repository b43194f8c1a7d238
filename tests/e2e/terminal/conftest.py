"""Terminals the deck runs in: a tmux session of a given size, closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.terminal.tmux_terminal import TmuxTerminal


def _terminal(width: int, height: int) -> Iterator[TmuxTerminal]:
    terminal = TmuxTerminal(width, height)
    try:
        yield terminal
    finally:
        terminal.close()


@pytest.fixture
def terminal_120x40() -> Iterator[TmuxTerminal]:
    yield from _terminal(120, 40)


@pytest.fixture
def terminal_80x24() -> Iterator[TmuxTerminal]:
    """The smallest terminal the deck supports."""
    yield from _terminal(80, 24)
