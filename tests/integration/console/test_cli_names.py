"""``fleetdeck`` refuses a namespace, deployment, job, pod or model name that breaks the naming
rule before it opens a backend: exit 2, the rule in one printable line, nothing sent. Both
backends: a local profile (no agent is started, no state folder made) and a Kubernetes profile
whose cluster cannot be reached (a command that got as far as the cluster would exit 1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from console.names import LABEL_RULE
from tests.support.cli import run_fleetdeck

ROOT = Path(__file__).resolve().parents[3]
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]

# (arguments, what the refusal names)
HOSTILE_COMMANDS = [
    (["-n", "../../x", "deploy", "ok", "--model", "digits", "--version", "1"], "namespace"),
    (["-n", "A", "ls"], "namespace"),
    (["-n", "ns\n", "rollout", "ok", "--version", "2"], "namespace"),
    (["-n", "../../x", "logs", "digits-a-1-0"], "namespace"),
    (["deploy", "a/b", "--model", "digits", "--version", "1"], "deployment name"),
    (["deploy", "x\x1b[2J", "--model", "digits", "--version", "1"], "deployment name"),
    (["rollout", "ok", "../../x", "--version", "2"], "deployment name"),
    (["scale", "Digits", "--replicas", "1"], "deployment name"),
    (["status", "name\n"], "deployment name"),
    (["delete", "models/B", "--yes"], "deployment name"),  # NAMESPACE/NAME, its NAME bad
    (["delete", "a/b/c/x\n", "--yes"], "deployment name"),
    (["logs", "deploy/x\x1b]0;owned\x07"], "deployment name"),
    (["logs", "job/A"], "job name"),
    (["cancel", "job/A", "--yes"], "job name"),
]
HOSTILE_MODELS = [
    ["deploy", "ok", "--model", "digits\n", "--version", "1", "--no-verify"],
    ["train", "--model", "../m", "--data", "/tmp/data"],
    ["score", "--model", "M", "--version", "1", "--input", "/tmp/in"],
]


@pytest.fixture(params=["local", "kubernetes"])
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    profiles = tmp_path / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True)
    if request.param == "local":
        text = f'backend = "local"\n[store]\nroot = "{tmp_path / "store"}"\n'
    else:
        text = (
            'backend = "kubernetes"\n'
            f'[kubernetes]\nkubeconfig = "{tmp_path / "no-such-kubeconfig"}"\n'
            f'namespaces = ["default"]\n[store]\nroot = "{tmp_path / "store"}"\n'
        )
    (profiles / "names.toml").write_text(text)
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "FLEETDECK_PROFILE": "names",
    }


def fleetdeck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args, env=env, timeout=120)


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    message = done.stderr.rstrip("\n")
    assert message.startswith("fleetdeck: invalid ")
    for word in words:
        assert word in message, message
    found = [hex(ord(c)) for c in message if c in CONTROLS]
    assert not found, f"control characters reach the terminal: {found}"
    assert done.stdout == ""


def test_the_cli_refuses_a_hostile_name_before_anything_is_sent(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    for args, what in HOSTILE_COMMANDS:
        assert_refused(fleetdeck(cli_env, *args), f"invalid {what}", LABEL_RULE)
    for pod in ("pod\n", "..", "Pod"):
        # A pod's name is a DNS-1123 subdomain (labels joined by dots), as Kubernetes has it.
        assert_refused(fleetdeck(cli_env, "logs", pod), "invalid pod name", "DNS-1123 subdomain")
    # Nothing was started or written: no agent state, no audit record of a refused command.
    assert not (tmp_path / "state").exists()


def test_the_cli_refuses_a_hostile_model_name_with_the_stores_rule(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    for args in HOSTILE_MODELS:
        assert_refused(fleetdeck(cli_env, *args), "invalid model name")
    assert not (tmp_path / "state").exists()


def test_an_escape_sequence_in_a_refused_name_is_shown_escaped(cli_env: dict[str, str]) -> None:
    done = fleetdeck(cli_env, "deploy", "x\x1b[2J\ny", "--model", "digits", "--version", "1")
    assert_refused(done, "invalid deployment name 'x\\x1b[2J\\ny'")
