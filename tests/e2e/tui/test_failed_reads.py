"""A read that fails on any screen is shown on that screen, plainly, and the next read recovers.

Each screen runs on a real backend (the KWOK cluster, a real local store); the only fake is the
fault: the backend is wrapped so that one of its reads raises the first few times it is called.
The error quotes the backend, so it carries markup and an escape sequence that must reach the
screen as plain text."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen

from console.backends.kubernetes.backend import KubernetesBackend
from console.model import TrainingRequest
from console.tui.loader import LoadErrorLine
from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.models import ModelsScreen
from console.tui.screens.training import TrainingScreen
from serving.store import ModelStore
from tests.e2e.tui.deck_pilot import KwokFleet, kwok_fleet_fixture, run, shown_names, wait_for
from tests.e2e.tui.screen_host import ScreenHost
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.kwok_backend import kwok_backend as started_kwok_backend
from tests.support.versions import describe, make_version

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for

HOSTILE = "the API server said [bold red]no[/]\x1b[2J"
FAILURES = 2  # the first read and the first retry fail; the second retry succeeds


class FailingReads:
    """The real backend, except that its ``read`` method raises the first ``times`` calls."""

    def __init__(self, backend: KubernetesBackend, read: str, times: int = FAILURES) -> None:
        self._backend = backend
        self._read = read
        self._left = times
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._backend, name)
        if name != self._read:
            return found

        def read(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                failing, self._left = self._left > 0, self._left - 1
            if failing:
                raise ConnectionError(HOSTILE)
            return found(*args, **kwargs)

        return read


def error_shown(screen: Screen[Any]) -> str:
    """The load error line's text, "" while it is hidden."""
    line = screen.query_one(LoadErrorLine)
    return str(line.render()) if line.display else ""


async def shows_the_error_then_recovers(
    pilot: Pilot[None], screen: Screen[Any], what: str, recovered: Any
) -> None:
    text = await wait_for(pilot, "the error on the screen", lambda: error_shown(screen))
    assert f"{what}: ConnectionError: the API server said [bold red]no[/]\\x1b[2J" in text
    assert "retrying in" in text
    await wait_for(pilot, "the data after the retry", recovered)
    await wait_for(pilot, "the error line gone", lambda: not error_shown(screen))


def test_a_failed_fleet_read_is_shown_and_the_next_read_recovers(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("alpha", "beta")
    failing: Any = FailingReads(kwok_fleet.backend, "deployments")  # stands in for the backend

    async def scenario() -> None:
        app = kwok_fleet.deck(user_backend=failing)
        async with app.run_test(size=(120, 30)) as pilot:
            await shows_the_error_then_recovers(
                pilot,
                app.fleet,
                "cannot read the fleet",
                lambda: shown_names(app) == ["alpha", "beta"],
            )

    run(scenario)


def test_a_failed_deployment_read_is_shown_and_the_next_read_recovers(
    kwok_fleet: KwokFleet,
) -> None:
    kwok_fleet.deploy("alpha")
    failing: Any = FailingReads(kwok_fleet.backend, "events")  # stands in for the backend

    async def scenario() -> None:
        app = kwok_fleet.deck(user_backend=failing)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, "the fleet", lambda: shown_names(app) == ["alpha"])
            await pilot.press("d")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            await shows_the_error_then_recovers(
                pilot,
                screen,
                f"cannot read {kwok_fleet.namespace}/alpha",
                lambda: screen.detail is not None and screen.detail.deployment is not None,
            )
            assert "alpha" in str(screen.query_one("#detail-summary").render())

    run(scenario)


@pytest.fixture
def kwok_backend(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KubernetesBackend]:
    """The KWOK cluster, with a real local store of two versions."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # this test's own audit log
    store = ModelStore(str(tmp_path / "store"))
    for version in ("a", "b"):
        store.publish("digits", make_version(tmp_path / version), describe)
    with started_kwok_backend(k8s_cluster, k8s_namespace, store.root) as backend:
        yield backend


def test_a_failed_jobs_read_is_shown_and_the_next_read_recovers(
    kwok_backend: KubernetesBackend, k8s_namespace: str
) -> None:
    (launched,) = kwok_backend.train(TrainingRequest("digits", "digits", k8s_namespace, gpus=0))
    assert launched.ok, launched.message
    poll_until("the job in the cache", lambda: bool(kwok_backend.jobs()), 60)
    failing = FailingReads(kwok_backend, "jobs")

    async def scenario() -> None:
        app = ScreenHost(lambda: TrainingScreen(failing, kwok_backend.profile))
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await shows_the_error_then_recovers(
                pilot,
                screen,
                "cannot read the training jobs",
                lambda: "Training · 1 jobs" in str(screen.query_one("#training-header").render()),
            )

    run(scenario)


def test_deployments_that_cannot_be_listed_leave_the_store_shown_until_the_next_read(
    kwok_backend: KubernetesBackend,
) -> None:
    failing = FailingReads(kwok_backend, "deployments")

    async def scenario() -> None:
        app = ScreenHost(lambda: ModelsScreen(failing, kwok_backend.profile))
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await wait_for(pilot, "the store's two versions", lambda: len(screen.rows) == 2)
            await shows_the_error_then_recovers(
                pilot, screen, "cannot list deployments", lambda: screen.loader.loads > FAILURES
            )
            assert [(r.model, r.version) for r in screen.rows] == [("digits", 2), ("digits", 1)]

    run(scenario)
