"""A minimal host App for driving one of the deck's screens with Textual's pilot.

The screen under test is pushed over an empty base screen, as the deck pushes it, so ``esc``
(dismiss) behaves as it does in the deck; it opens the screens a screen asks for that need no
deck session (a job's logs), as the deck does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from textual.pilot import Pilot
from textual.screen import Screen

from console.tui.app import ScreenRouter

T = TypeVar("T")


class ScreenHost(ScreenRouter):
    def __init__(self, make_screen: Callable[[], Screen[None]]) -> None:
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


async def wait_for(
    pilot: Pilot[None], what: str, check: Callable[[], T | None], within: float = 60.0
) -> T:
    """Let the app run until ``check`` returns something truthy; fail saying what was awaited."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await pilot.pause(0.1)


def run(scenario: Callable[[], object]) -> None:
    """Run an async test scenario (the suite has no asyncio plugin)."""
    asyncio.run(scenario())  # type: ignore[arg-type]
