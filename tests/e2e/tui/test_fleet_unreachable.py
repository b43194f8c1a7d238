"""A cluster that does not answer never freezes the deck: the status bar says it is
reconnecting and since when, and every key is still answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.backends.kubernetes.backend import KubernetesBackend
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.screens.help import HelpScreen
from tests.e2e.tui.deck_pilot import run, wait_for


@pytest.fixture
def unreachable() -> Iterator[KubernetesBackend]:
    """The real Kubernetes backend pointed at a port nothing listens on."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:9"  # discard: connections are refused
    configuration.verify_ssl = False
    backend = KubernetesBackend(
        load_profile("kwok"), api_client=client.ApiClient(configuration), namespaces=["models"]
    )
    backend.start(timeout=0.1)  # starts the watchers; it will not sync
    try:
        yield backend
    finally:
        backend.close()


def test_an_unreachable_cluster_shows_reconnecting_and_keys_still_work(
    unreachable: KubernetesBackend,
) -> None:
    async def scenario() -> None:
        app = DeckApp(unreachable, unreachable.profile, context="nowhere")
        async with app.run_test(size=(80, 24)) as pilot:
            status: Any = app.fleet.query_one("#fleet-status")
            await wait_for(
                pilot,
                "reconnecting in the status bar",
                lambda: "reconnecting since" in str(status.render()),
            )
            assert app.fleet.rows == []
            await pilot.press("slash", "x", "enter", "question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(scenario)
