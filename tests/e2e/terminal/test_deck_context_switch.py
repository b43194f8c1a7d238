"""``:ctx`` and ``:ns`` in a real terminal (tmux), on the test cluster: the deck moves from
``kwok-admin`` to ``kwok-viewer`` without a restart and the viewer's deck offers no actions;
the header names the context in the profile's colour for it, on every screen."""

from __future__ import annotations

import os
import re
import sys
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.terminal.tmux_terminal import TmuxTerminal
from tests.infra.k8s_fixtures import K8sCluster

FLEETDECK = str(Path(sys.executable).parent / "fleetdeck")
PROFILES = Path(__file__).resolve().parents[3] / "profiles"


def deck_env(home: Path, cluster: K8sCluster) -> dict[str, str]:
    """A temporary user whose ``kwok`` profile is the bundled one on this cluster's kubeconfig,
    with a colour for the admin's context."""
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True)
    bundled = (PROFILES / "kwok.toml").read_text(encoding="utf-8")
    kubeconfig = f'kubeconfig = "{cluster.kubeconfig}"'
    text = "\n".join(
        kubeconfig if line.startswith("kubeconfig =") else line for line in bundled.splitlines()
    )
    text += '\n\n[deck]\ncontext_colors = { "kwok-admin" = "red" }\n'
    (profiles / "kwok.toml").write_text(text, encoding="utf-8")
    env = {
        "PATH": f"{Path(FLEETDECK).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "FLEETDECK_PROFILE": "kwok",
    }
    for name in ("FLEETDECK_HDFS_HTTP_PORT",):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def profile_colour(term: TmuxTerminal) -> str:
    """The foreground SGR the header draws the profile's name in."""
    found = re.search(r"\x1b\[([0-9;]+)mkwok(?:\x1b\[[0-9;]+m)?@", term.screen(escapes=True))
    assert found, term.screen(escapes=True)
    return found.group(1)


def context_colour(term: TmuxTerminal, context: str) -> str:
    """The foreground SGR of ``@context`` in the header (the profile's when none is set)."""
    screen = term.screen(escapes=True)
    found = re.search(rf"kwok(?:\x1b\[([0-9;]+)m)?@{context}", screen)
    assert found, screen
    return found.group(1) or profile_colour(term)


def close_help(term: TmuxTerminal) -> None:
    term.press("?")  # `?` closes it again (a lone Escape waits out the terminal's escape delay)
    term.wait_for("the help to close", lambda s: "Keys: Fleet" not in s)


def contains(text: str, screen: str) -> bool:
    return text in screen


def lacks(text: str, screen: str) -> bool:
    return text not in screen


def header_line(screen: str) -> str:
    return next((line for line in screen.splitlines() if "kwok@" in line), "")


@pytest.mark.usefixtures("k8s_namespace")
def test_ctx_from_admin_to_viewer_takes_the_actions_away_without_a_restart(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path, terminal_120x40: TmuxTerminal
) -> None:
    term = terminal_120x40
    term.start([FLEETDECK, "-n", k8s_namespace], deck_env(tmp_path, k8s_cluster))
    admin = term.wait_for("the admin's fleet", lambda s: "kwok@kwok-admin" in s, 90)
    assert f"[{k8s_namespace}]" in header_line(admin)
    # The admin's context in the profile's colour, apart from the profile's name beside it.
    assert context_colour(term, "kwok-admin") != profile_colour(term)
    term.press("?")
    helped = term.wait_for("the admin's keys", lambda s: "Keys: Fleet" in s)
    assert "rollout" in helped.lower()
    assert "Not offered here" not in helped, helped
    close_help(term)
    admin_colour = context_colour(term, "kwok-admin")
    # Every screen names the context, in the same colour: production is never mistaken for
    # staging, whichever screen is open.
    for command, title in (("jobs", "Training"), ("models", "Models"), ("overview", "busiest")):
        term.command(command)
        shown = term.wait_for(f"the {title} screen", partial(contains, title), 30)
        assert f"[{k8s_namespace}]" in header_line(shown), shown
        assert context_colour(term, "kwok-admin") == admin_colour, command
        term.press("Escape")
        term.wait_for("the fleet again", partial(lacks, title), 30)

    term.command("ctx kwok-viewer")
    viewer = term.wait_for(
        "the viewer's fleet, its actions refused by RBAC",
        lambda s: "kwok@kwok-viewer" in s and "RBAC: no" in s,
        90,
    )
    assert "kwok-admin" not in header_line(viewer)
    assert context_colour(term, "kwok-viewer") == profile_colour(term)  # no colour set for it
    term.press("?")
    helped = term.wait_for("the viewer's keys", lambda s: "Keys: Fleet" in s)
    assert "rollout:" in helped  # listed among the keys not offered, with the reason
    close_help(term)

    # :ns all: every namespace, same context, still the deck that was started.
    term.command("ns all")
    term.wait_for(
        "all namespaces on the viewer's context",
        lambda s: "kwok@kwok-viewer [all namespaces]" in s,
        90,
    )
    assert term.exit_code() is None  # never restarted
