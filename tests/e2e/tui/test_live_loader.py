"""The deck's live loader on its own, in a real Textual app: refreshes asked while a read runs
become exactly one more read, and a read that raises is retried until one succeeds."""

from __future__ import annotations

import threading

from textual.app import App, ComposeResult
from textual.widgets import Static

from console.backoff import Backoff
from console.tui.loader import LiveLoader, Loaded, LoadFailed
from tests.e2e.tui.screen_host import run, wait_for

NO_WAIT = Backoff(initial=0.0)  # retries at once: the test waits on what it sees


class Reads:
    """A read that waits for the test to let it finish, and counts how often it ran."""

    def __init__(self, failures: int = 0) -> None:
        self.started = 0
        self.failures = failures
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> int:
        self.started += 1
        self.release.wait(timeout=30)
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        return self.started


class LoaderApp(App[None]):
    def __init__(self, reads: Reads) -> None:
        super().__init__()
        self.loader = LiveLoader(self, reads, name="probe", what="the probe", backoff=NO_WAIT)
        self.values: list[int] = []
        self.errors: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("probe")
        yield self.loader.error_line()

    def on_loaded(self, message: Loaded[int]) -> None:
        self.values.append(message.value)

    def on_load_failed(self, message: LoadFailed[int]) -> None:
        self.errors.append(message.error)


def test_refreshes_asked_during_a_read_become_exactly_one_more_read() -> None:
    async def scenario() -> None:
        reads = Reads()
        reads.release.clear()
        app = LoaderApp(reads)
        async with app.run_test() as pilot:
            app.loader.start()
            await wait_for(pilot, "the first read", lambda: reads.started == 1)
            for _ in range(5):
                app.loader.request()
            reads.release.set()
            await wait_for(pilot, "two reads shown", lambda: len(app.values) == 2)
            await pilot.pause(0.5)
            assert reads.started == 2
            assert app.values == [1, 2]

    run(scenario)


def test_a_read_that_raises_is_shown_then_retried_until_one_succeeds() -> None:
    async def scenario() -> None:
        reads = Reads(failures=3)
        app = LoaderApp(reads)
        async with app.run_test() as pilot:
            app.loader.start()
            await wait_for(pilot, "a good read", lambda: app.values)
            assert app.errors == ["cannot read the probe: OSError: disk on fire"] * 3
            assert app.values == [4]
            assert app.loader.error == ""
            assert not app.query_one("#probe-load-error").display

    run(scenario)
