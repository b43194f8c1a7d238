"""Driving the deck with Textual's pilot on the real KWOK cluster: a fleet of fleetdeck-made
Deployments in a namespace of the test's own, and small readers of what the user sees."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.pilot import Pilot

from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeploymentState, DeployRequest
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.screens.fleet import FleetScreen
from tests.infra.k8s_fixtures import K8sCluster, poll_until

T = TypeVar("T")


@dataclasses.dataclass
class KwokFleet:
    cluster: K8sCluster
    namespace: str
    backend: KubernetesBackend
    audit_path: Path

    def deploy(self, *names: str, model: str = "digits", replicas: int = 1) -> None:
        for name in names:
            result = self.backend.actions.deploy(
                DeployRequest(name, model, 1, replicas=replicas), self.namespace, verify=False
            )
            assert result.ok, result.message
        for name in names:
            poll_until(f"{name} in the cache", partial(self.cached, name), 60)

    def cached(self, name: str) -> bool:
        return self.backend.deployment(self.namespace, name) is not None

    def available(self, name: str) -> bool:
        row = self.backend.deployment(self.namespace, name)
        return row is not None and row.state is DeploymentState.AVAILABLE

    def deck(self, *, user_backend: KubernetesBackend | None = None, **options: Any) -> DeckApp:
        return DeckApp(
            user_backend or self.backend,
            self.backend.profile,
            context="kwok-admin",
            user="alice",
            audit_path=self.audit_path,
            **options,
        )

    def backend_as(self, user: str, *, read_only: bool = False) -> KubernetesBackend:
        backend = KubernetesBackend(
            load_profile("kwok"),
            api_client=self.cluster.api_client(user),
            namespaces=[self.namespace],
            user=user,
            read_only=read_only,
        )
        assert backend.start()
        return backend


@pytest.fixture(name="kwok_fleet")
def kwok_fleet_fixture(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> Iterator[KwokFleet]:
    backend = KubernetesBackend(
        load_profile("kwok"),
        api_client=k8s_cluster.api_client(),
        namespaces=[k8s_namespace],
        user="alice",
    )
    assert backend.start()
    try:
        yield KwokFleet(k8s_cluster, k8s_namespace, backend, tmp_path / "audit.jsonl")
    finally:
        backend.cache.stop()


async def wait_for(
    pilot: Pilot[None], what: str, check: Callable[[], T | bool | None], within: float = 60.0
) -> T:
    """Let the app run until ``check`` gives something truthy; fail saying what was awaited."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result is not None and result is not False:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await pilot.pause(0.1)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async scenario (the suite has no asyncio plugin)."""
    asyncio.run(scenario())


def fleet_screen(app: DeckApp) -> FleetScreen:
    return app.fleet


def shown_names(app: DeckApp) -> list[str]:
    """The deployment names in the Fleet table, top to bottom."""
    return [row.deployment.name for row in app.fleet.table.view]


def cursor_name(app: DeckApp) -> str | None:
    row = app.fleet.table.cursor_row
    return row.deployment.name if row else None


def notices(app: DeckApp) -> list[str]:
    """The notifications the user was shown."""
    return [n.message for n in app._notifications]


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


async def open_changes_until_regressed(pilot: Pilot[None], app: DeckApp, within: float) -> Any:
    """From the Fleet screen, ``c``: the Changes screen, once its newest change is marked as
    followed by a regression (returns the screen)."""
    from console.tui.screens.changes import ChangesScreen

    assert isinstance(app.screen, FleetScreen)
    await pilot.press("c")
    screen: object = app.screen
    assert isinstance(screen, ChangesScreen)
    await wait_for(
        pilot,
        "the newest change marked as followed by a regression",
        lambda: bool(screen.shown_rows) and screen.shown_rows[0].regressed,
        within=within,
    )
    return screen


async def undo_selected_change(pilot: Pilot[None], app: DeckApp) -> list[str]:
    """``U`` on the Changes screen, then ``y`` on its plan; returns the plan's lines."""
    from console.tui.screens.changes import ConfirmUndo

    await pilot.press("U")
    await wait_for(pilot, "the undo's preview", lambda: isinstance(app.screen, ConfirmUndo))
    confirm = app.screen
    assert isinstance(confirm, ConfirmUndo)
    lines = confirm.plan.lines()
    await pilot.press("y")
    return lines


async def wait_for_undo_row(pilot: Pilot[None], screen: Any, within: float) -> Any:
    """The Changes screen's newest row, once it is the undo (returns the row)."""
    from console.changes.model import Kind

    await wait_for(
        pilot,
        "the undo in the timeline",
        lambda: bool(screen.shown_rows) and screen.shown_rows[0].change.kind is Kind.UNDO,
        within=within,
    )
    return screen.shown_rows[0]
