"""Shell completion in zsh and fish (issue 17), loaded as the README tells their users to, in
the real shells, completing from the real test cluster.

- zsh: ``autoload -U compinit && compinit`` then ``source <(fleetdeck completion zsh)`` in the
  user's ``.zshrc``. An interactive zsh on a pseudo-terminal reads that ``.zshrc``, the test
  types the line and a TAB, and reads back the command line after the TAB and the words zsh
  offered (every ``compadd`` of the completion system, recorded by a wrapper as zsh's own
  completion tests and zsh-capture-completion do).
- fish: ``fleetdeck completion fish | source``; fish's ``complete -C LINE`` prints what fish
  offers at the end of LINE.

bash is exercised in test_cli_kubectl_habits.py (``compgen``-style, COMPREPLY).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.k8s_fixtures import K8sCluster
from tests.infra.require import missing_infra
from tests.support.cli import ROOT, Fleetdeck, fleetdeck_on_path, fleetdeck_with_digits

CONTEXTS = {"kwok-admin", "kwok-oncall", "kwok-viewer"}
WAIT = 120.0  # seconds a shell may take to start or to complete (a safety net, never asserted)

# The user's .zshrc as the README gives it, then the test's instruments: compadd recording
# what it offers (calls that only query, -O/-A/-D, are passed through), and ^X writing the
# command line to a file.
ZSHRC = r"""
bindkey -e
autoload -U compinit && compinit -u -D
source <(fleetdeck completion zsh)

compadd() {
    local arg
    for arg in "$@"; do
        [[ $arg == (-|--) ]] && break
        if [[ $arg == -[OAD]* ]]; then
            builtin compadd "$@"
            return
        fi
    done
    local -a hits
    builtin compadd -A hits "$@"
    (( $#hits )) && print -rl -- $hits >> "$FLEETDECK_TEST_OFFERED"
    builtin compadd "$@"
}
fleetdeck-test-line() { print -r -- "$BUFFER" > "$FLEETDECK_TEST_LINE" }
zle -N fleetdeck-test-line
bindkey '^X' fleetdeck-test-line
print ready > "$FLEETDECK_TEST_READY"
"""


def shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing_infra(f"{name} (apt-get install {name}): its completion is tested in it")
    return found


@pytest.fixture
def zsh() -> str:
    return shell("zsh")


@pytest.fixture
def fish() -> str:
    return shell("fish")


@pytest.fixture
def fleetdeck(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> Fleetdeck:
    """The CLI on the test cluster with ``digits-a`` and ``digits-b`` deployed (versions 1 and
    2 of ``digits`` in the store)."""
    fleetdeck = fleetdeck_with_digits(
        tmp_path, kubeconfig=k8s_cluster.kubeconfig, namespace=k8s_namespace, store=hdfs_root
    )
    for name in ("digits-a", "digits-b"):
        done = fleetdeck("deploy", name, "--model", "digits", "--version", "1", "--gpus", "0")
        assert done.code == 0, done.err
    return fleetdeck


@dataclass
class Tabbed:
    """A zsh command line after TAB, and the words zsh offered for it."""

    line: str
    offered: set[str]


def wait_for(ready: Callable[[], bool], what: str, screen: bytearray) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"zsh: no {what}; its terminal showed {bytes(screen)!r}")
        time.sleep(0.05)


def zsh_tab(zsh: str, env: Mapping[str, str], typed: str) -> Tabbed:
    """``typed`` and a TAB in an interactive zsh (on a pseudo-terminal of 200 × 50) that read
    the README's lines from its ``.zshrc``."""
    with fleetdeck_on_path(env) as (folder, shell_env):
        files = {name: folder / name for name in ("ready", "offered", "line")}
        (folder / ".zshrc").write_text(ZSHRC)
        shell_env |= {f"FLEETDECK_TEST_{name.upper()}": str(f) for name, f in files.items()}
        shell_env |= {"ZDOTDIR": str(folder), "TERM": "xterm"}
        terminal, user = os.openpty()
        fcntl.ioctl(user, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        # -d: no global start-up files; the user's .zshrc alone, whatever the machine's are.
        process = subprocess.Popen(
            [zsh, "-d", "-i"],
            stdin=user,
            stdout=user,
            stderr=user,
            env=shell_env,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(user)
        screen = bytearray()  # drained, so that zsh never blocks on a full terminal

        def read() -> None:
            while chunk := _read(terminal):
                screen.extend(chunk)

        threading.Thread(target=read, daemon=True).start()
        try:
            wait_for(files["ready"].exists, ".zshrc read", screen)
            os.write(terminal, f"{typed}\t\x18".encode())
            wait_for(files["line"].exists, "command line after TAB", screen)
            line = files["line"].read_text().removesuffix("\n")
            offered = files["offered"].read_text().split() if files["offered"].exists() else []
        finally:
            process.kill()
            process.wait()
            os.close(terminal)
    return Tabbed(line, set(offered))


def _read(terminal: int) -> bytes:
    try:
        return os.read(terminal, 4096)
    except OSError:  # the shell is gone
        return b""


def fish_complete(fish: str, env: Mapping[str, str], typed: str) -> list[str]:
    """What fish offers at the end of ``typed`` (``complete -C``, without descriptions) once
    ``fleetdeck completion fish | source`` has run."""
    script = f"fleetdeck completion fish | source\ncomplete -C {shlex.quote(typed)}\n"
    with fleetdeck_on_path(env) as (_, shell_env):
        done = subprocess.run(
            [fish, "--no-config", "-c", script],
            env=shell_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
    assert done.returncode == 0, done.stderr
    return [line.split("\t")[0] for line in done.stdout.splitlines() if line]


def test_zsh_completes_commands_profiles_contexts_namespaces_and_deployments(
    zsh: str, fleetdeck: Fleetdeck, k8s_namespace: str
) -> None:
    def tab(typed: str) -> Tabbed:
        return zsh_tab(zsh, fleetdeck.env, typed)

    assert tab("fleetdeck sca").line == "fleetdeck scale "
    both = tab("fleetdeck sc")
    assert both.offered == {"scale", "score"}
    assert both.line == "fleetdeck sc"
    assert "test" in tab("fleetdeck --profile ").offered
    assert tab("fleetdeck ls --context kwok-").offered == CONTEXTS
    assert tab("fleetdeck ls -n ").offered == {k8s_namespace}
    assert tab("fleetdeck describe digits-").offered == {"digits-a", "digits-b"}
    assert tab("fleetdeck scale digits-b").line == "fleetdeck scale digits-b "
    assert tab("fleetdeck rollout digits-a --version ").offered == {"1", "2"}


def test_fish_completes_commands_profiles_contexts_namespaces_and_deployments(
    fish: str, fleetdeck: Fleetdeck, k8s_namespace: str
) -> None:
    def complete(typed: str) -> list[str]:
        return fish_complete(fish, fleetdeck.env, typed)

    assert complete("fleetdeck sca") == ["scale"]
    assert set(complete("fleetdeck sc")) == {"scale", "score"}
    assert "test" in complete("fleetdeck --profile ")
    assert set(complete("fleetdeck ls --context kwok-")) == CONTEXTS
    assert complete("fleetdeck ls -n ") == [k8s_namespace]
    assert set(complete("fleetdeck describe digits-")) == {"digits-a", "digits-b"}
    assert complete("fleetdeck logs deploy/digits-b") == ["deploy/digits-b"]
    assert set(complete("fleetdeck rollout digits-a --version ")) == {"1", "2"}
