"""What the Logs screen looks like at 80×24 and 160×50 on fixed lines: following one pod, and
three pods merged with their coloured prefixes and a search hit highlighted."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.backends.base import LogRequest
from console.tui.screens.logs import LogsScreen
from tests.e2e.tui.fixed_jobs import FixedTraining
from tests.e2e.tui.screen_host import ScreenHost, wait_for

PODS = ("digits-7d9f-abcde", "digits-7d9f-fghij", "digits-7d9f-klmno")


def logs_app(pods: tuple[str, ...]) -> ScreenHost:
    request = LogRequest(pods, "models", tail=200)
    return ScreenHost(lambda: LogsScreen(FixedTraining(), request, "models/digits"))


def one_pod() -> ScreenHost:
    return logs_app(PODS[:1])


def three_pods() -> ScreenHost:
    return logs_app(PODS)


async def all_lines(pilot: Pilot[Any]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, LogsScreen)
    await wait_for(pilot, "the stream to end", lambda: screen.ended)


async def searched(pilot: Pilot[Any]) -> None:
    await all_lines(pilot)
    await pilot.press("slash", *"error", "enter", "n")


def test_logs_following_one_pod_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(one_pod(), terminal_size=(80, 24), run_before=all_lines)


def test_logs_following_one_pod_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(one_pod(), terminal_size=(160, 50), run_before=all_lines)


def test_logs_of_three_pods_merged_with_a_search_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(three_pods(), terminal_size=(80, 24), run_before=searched)


def test_logs_of_three_pods_merged_with_a_search_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(three_pods(), terminal_size=(160, 50), run_before=searched)


COLOURED = [
    "12:00:00 \x1b[32mINFO\x1b[0m ready on :8080",
    "12:00:01 \x1b[1;31mERROR\x1b[0m predict digits: \x1b[33minput shape\x1b[0m (1, 9, 9)",
    "12:00:02 a cursor move \x1b[2J\x1b[H and a bell \x07 are shown, never obeyed",
]


def coloured_pod() -> ScreenHost:
    request = LogRequest(PODS[:1], "models", tail=200)
    return ScreenHost(lambda: LogsScreen(FixedTraining(lines=COLOURED), request, "models/digits"))


def test_logs_coloured_lines_in_colour_other_escapes_shown_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(coloured_pod(), terminal_size=(80, 24), run_before=all_lines)
