"""What the Training screen and the launch form look like at 80×24 and 160×50, on fixed jobs
(a finished job with its plot, a running one, a GPU job pending with the scheduler's reason, a
sweep's trials) with time frozen."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.profile import load_profile
from console.tui.screens.training import TrainingScreen
from tests.e2e.tui.fixed_jobs import NOW, FixedTraining
from tests.e2e.tui.screen_host import ScreenHost, wait_for


def training_app() -> ScreenHost:
    profile = load_profile("kwok")
    return ScreenHost(
        lambda: TrainingScreen(FixedTraining(), profile, clock=lambda: NOW, live=False)
    )


async def loaded(pilot: Pilot[Any]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    await wait_for(pilot, "the jobs and their epochs", lambda: len(screen.progress) == 4)
    await wait_for(pilot, "the permission check", lambda: screen.checked)
    await pilot.pause()


async def pending_job(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("j", "j")


async def launch_form(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("n")
    await pilot.pause()


def test_training_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(training_app(), terminal_size=(80, 24), run_before=loaded)


def test_training_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(training_app(), terminal_size=(160, 50), run_before=loaded)


def test_training_pending_gpu_job_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(training_app(), terminal_size=(160, 50), run_before=pending_job)


def test_launch_form_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(training_app(), terminal_size=(80, 24), run_before=launch_form)
