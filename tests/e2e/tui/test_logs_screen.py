"""The Logs screen on real pods of the KWOK cluster: lines written by a container arrive while the
screen follows; scrolling up stops follow and counts what arrived since; search with n/N; several
pods merged with a coloured prefix; bounded memory; save to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.backends.base import LogRequest
from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeployRequest
from console.profile import load_profile
from console.tui.screens.logs import LogsScreen
from console.tui.widgets.log_view import LogView
from tests.e2e.tui.screen_host import ScreenHost, run, wait_for
from tests.infra.k8s_fixtures import K8sCluster, poll_until


@pytest.fixture
def pods(k8s_cluster: K8sCluster, k8s_namespace: str) -> tuple[KubernetesBackend, list[str]]:
    """A deployment of two running pods, each with a log file of its own."""
    from kubernetes import client

    backend = KubernetesBackend(
        load_profile("kwok"),
        api_client=k8s_cluster.api_client(),
        namespaces=[k8s_namespace],
        user="test",
    )
    result = backend.actions.deploy(
        DeployRequest("digits", "digits", 1, replicas=2), k8s_namespace, verify=False
    )
    assert result.ok, result.message
    core: Any = client.CoreV1Api(k8s_cluster.api_client())

    def running() -> list[str] | None:
        items = core.list_namespaced_pod(k8s_namespace).items
        names = sorted(p.metadata.name for p in items if p.status.phase == "Running")
        return names if len(names) == 2 else None

    names = poll_until("two running pods", running, timeout=180)
    for pod in names:
        k8s_cluster.ensure_log_file(k8s_namespace, pod)
    return backend, names


def visible(view: LogView) -> list[str]:
    """The text rows the user sees in the log view."""
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


def status(screen: LogsScreen) -> str:
    return screen.status_text()


def logs_host(backend: Any, namespace: str, pods: list[str], **options: Any) -> ScreenHost:
    return ScreenHost(lambda: LogsScreen(backend, LogRequest(pods, namespace), pods[0], **options))


def test_lines_written_while_following_appear_at_the_bottom(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, [f"boot {i}" for i in range(3)])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "the existing lines", lambda: "boot 2" in visible(screen.view))
            k8s_cluster.append_log(k8s_namespace, pod, [f"served request {i}" for i in range(40)])
            await wait_for(
                pilot,
                "the new lines at the bottom",
                lambda: visible(screen.view)[-1] == "served request 39",
            )
            assert status(screen).startswith("FOLLOWING · 43 lines")

    run(scenario)


def test_scrolling_up_stops_follow_and_counts_the_lines_that_arrive(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, [f"line {i}" for i in range(60)])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "60 lines", lambda: screen.buffer.total == 60)
            await pilot.press("pageup")
            assert "SCROLLED · 0 new lines" in status(screen)
            shown = visible(screen.view)
            k8s_cluster.append_log(k8s_namespace, pod, [f"later {i}" for i in range(7)])
            await wait_for(pilot, "7 new lines", lambda: "7 new lines" in status(screen))
            assert visible(screen.view) == shown  # what the user reads stays put
            await pilot.press("end")
            assert status(screen).startswith("FOLLOWING")
            await pilot.pause()
            assert visible(screen.view)[-1] == "later 6"

    run(scenario)


def test_search_jumps_to_the_next_and_previous_match(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    lines = [f"ok {i}" if i % 25 else f"ERROR disk full at step {i}" for i in range(1, 101)]
    k8s_cluster.append_log(k8s_namespace, pod, lines)

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "100 lines", lambda: screen.buffer.total == 100)
            await pilot.press("home", "slash", *"error", "enter")
            assert "/error: 4 matches at line 25" in status(screen)
            assert "ERROR disk full at step 25" in visible(screen.view)
            await pilot.press("n")
            assert "at line 50" in status(screen)
            await pilot.press("n", "n")
            assert "at line 100" in status(screen)
            await pilot.press("n")  # wraps to the first match
            assert "at line 25" in status(screen)
            await pilot.press("N")
            assert "at line 100" in status(screen)
            assert not screen.view.following  # a search hit holds the view still

    run(scenario)


def test_pods_merged_have_a_prefix_coloured_per_pod(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    for pod in names:
        k8s_cluster.append_log(k8s_namespace, pod, [f"hello from {pod}"])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, names)
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "a line per pod", lambda: screen.buffer.total >= 2)
            rows = {
                strip.text.rstrip(): strip
                for strip in (screen.view.render_line(y) for y in range(2))
            }
            colours = set()
            for pod in names:
                strip = rows[f"[{pod}] hello from {pod}"]
                prefix = next(iter(strip))
                assert prefix.text == f"[{pod}] "
                colours.add(prefix.style.color if prefix.style else None)
            assert len(colours) == 2

    run(scenario)


def test_a_fast_writer_keeps_only_the_newest_lines(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, [f"line {i}" for i in range(500)])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod], capacity=100)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "500 lines", lambda: screen.buffer.total == 500)
            assert len(screen.buffer) == 100
            assert "500 lines · 400 dropped (keeps 100)" in status(screen)
            assert visible(screen.view)[-1] == "line 499"

    run(scenario)


def test_save_writes_the_lines_held_to_a_file(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster, tmp_path: Path
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, [f"line {i}" for i in range(5)])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod], save_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "5 lines", lambda: screen.buffer.total == 5)
            await pilot.press("ctrl+s", "enter")
            await wait_for(pilot, "the save", lambda: "saved 5 lines to" in status(screen))

    run(scenario)
    (saved,) = tmp_path.glob("*.log")
    assert saved.read_text() == "".join(f"line {i}\n" for i in range(5))


def test_a_missing_pod_is_said_plainly_and_the_screen_stays(pods: Any, k8s_namespace: str) -> None:
    backend, _ = pods

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, ["nope"])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "the error", lambda: screen.ended)
            assert 'pods "nope" not found' in status(screen)

    run(scenario)


def test_pause_holds_new_lines_back_until_resumed(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, ["before"])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "the first line", lambda: screen.buffer.total == 1)
            await pilot.press("p")
            assert status(screen).startswith("PAUSED")
            k8s_cluster.append_log(k8s_namespace, pod, ["during"])
            await pilot.pause(2.0)  # time for the line to arrive, were it read
            assert "during" not in visible(screen.view)
            await pilot.press("p")
            await wait_for(pilot, "the held line", lambda: "during" in visible(screen.view))

    run(scenario)


def test_wrap_shows_a_long_line_whole_and_timestamps_restart_the_stream(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    long_line = "x" * 150 + " END"
    k8s_cluster.append_log(k8s_namespace, pod, [long_line])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "the long line", lambda: screen.buffer.total == 1)
            assert not any(row.endswith("END") for row in visible(screen.view))
            await pilot.press("w")
            assert "wrap" in status(screen)
            assert any(row.endswith("END") for row in visible(screen.view))
            await pilot.press("t")
            assert "timestamps" in str(screen.query_one("#logs-header").render())
            await wait_for(
                pilot,
                "the line again, stamped",
                lambda: screen.buffer.total == 1 and screen.buffer[0][:4].isdigit(),
            )

    run(scenario)


def test_tail_restarts_with_the_last_lines_and_a_wrong_container_is_said_plainly(
    pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, names = pods
    pod = names[0]
    k8s_cluster.append_log(k8s_namespace, pod, [f"line {i}" for i in range(10)])

    async def scenario() -> None:
        app = logs_host(backend, k8s_namespace, [pod])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            await wait_for(pilot, "10 lines", lambda: screen.buffer.total == 10)
            await pilot.press("T", "ctrl+u", "2", "enter")
            assert "tail 2" in str(screen.query_one("#logs-header").render())
            await wait_for(
                pilot,
                "the last two lines only",
                lambda: list(screen.buffer.lines()) == ["line 8", "line 9"],
            )
            await pilot.press("T", "ctrl+u", *"many", "enter")
            assert "tail 'many': give a number of lines or 'all'" in status(screen)
            await pilot.press("escape", "c", *"sidecar", "enter")
            await wait_for(pilot, "the refusal", lambda: screen.ended)
            assert "400 Bad Request: container sidecar is not valid for pod" in status(screen)
            assert "tail 'many'" not in status(screen)  # the old complaint is gone

    run(scenario)
