"""The CLI as a user runs it: a real ``fleetdeck`` process, its output captured."""

from __future__ import annotations

import json
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from serving.manifest import FileEntry, Manifest
from serving.store import ModelStore
from tests.support.versions import describe, make_version

ROOT = Path(__file__).resolve().parents[2]
# The installed entry point, for tests where how the user starts it matters (its working folder).
ENTRY_POINT = Path(sys.executable).parent / "fleetdeck"


def run_fleetdeck(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 300,
    entry_point: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``fleetdeck ARGS`` to its end, with no terminal on stdin; ``env`` replaces the
    environment (default: this process's)."""
    command = [str(ENTRY_POINT)] if entry_point else [sys.executable, "-m", "console"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ if env is None else env),
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Result:
    """What a finished ``fleetdeck`` said: exit status, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def yaml(self) -> Any:
        return yaml.safe_load(self.out)


class Fleetdeck:
    """``fleetdeck`` with an environment of its own (its profile, config and state folders)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(self, *args: str, timeout: float = 300) -> Result:
        done = run_fleetdeck(*args, env=self.env, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)

    def command(self) -> list[str]:
        """How a shell pipeline or ``xargs`` starts it (the interpreter of the tests)."""
        return [sys.executable, "-m", "console"]

    def xargs(self, first: Sequence[str], then: Sequence[str]) -> Result:
        """``fleetdeck FIRST | xargs fleetdeck THEN`` in a shell, as a user pipes ``-o name``."""
        command = " ".join(shlex.quote(word) for word in self.command())
        quoted = [" ".join(shlex.quote(word) for word in words) for words in (first, then)]
        done = subprocess.run(
            f"{command} {quoted[0]} | xargs {command} {quoted[1]}",
            shell=True,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``fleetdeck ARGS`` running (``ls -w``, ``logs -f``): stdout a pipe, read by lines."""
        return subprocess.Popen(
            [*self.command(), *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )


def kubernetes_fleetdeck(home: Path, *, kubeconfig: Path, namespace: str, store: str) -> Fleetdeck:
    """The CLI on a profile of its own (``test``): the test cluster, one namespace, ``store``."""
    from tests.support.front_ends import write_kubernetes_profile

    write_kubernetes_profile(
        home / "config", "test", kubeconfig=kubeconfig, namespace=namespace, store=store
    )
    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": "test",
        }
    )


def fleetdeck_with_digits(
    folder: Path,
    *,
    kubeconfig: Path,
    namespace: str,
    store: str,
    manifest: Callable[[int, Mapping[str, FileEntry]], Manifest] = describe,
) -> Fleetdeck:
    """The CLI on the test cluster (:func:`kubernetes_fleetdeck`) with versions 1 and 2 of
    ``digits`` published in ``store`` (their manifests from ``manifest``)."""
    source = make_version(folder / "version")
    for _ in range(2):
        ModelStore(store).publish("digits", source, manifest)
    return kubernetes_fleetdeck(
        folder / "home", kubeconfig=kubeconfig, namespace=namespace, store=store
    )


class OutputLines:
    """A running ``fleetdeck``'s stdout line by line, read by one thread (so a silent process
    cannot hang the test, and no line is lost between two waits)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.process = process
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, wanted: Callable[[str], bool], timeout: float = 120) -> list[str]:
        """The lines up to the first that ``wanted`` accepts; fails after ``timeout``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if wanted(line):
                return seen
        raise AssertionError(f"no wanted line from fleetdeck; it printed {seen!r}")


@contextmanager
def fleetdeck_on_path(env: Mapping[str, str]) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder holding a ``fleetdeck`` that starts this checkout's CLI (the tests'
    interpreter), and ``env`` with that folder first on PATH: a completion script runs
    ``fleetdeck`` at each TAB, as a user's shell finds it."""
    program = f'#!/bin/sh\nexec {sys.executable} -m console "$@"\n'
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        launcher = folder / "fleetdeck"
        launcher.write_text(program)
        launcher.chmod(0o755)
        yield folder, {**env, "PATH": f"{folder}:{env.get('PATH', '')}"}


def bash_completions(env: Mapping[str, str], line: str) -> list[str]:
    """What bash offers at the end of ``line`` for ``fleetdeck``: the script of
    ``fleetdeck completion bash`` sourced, COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT set as
    readline sets them, the completion function called and COMPREPLY printed (as
    bash-completion's tests do). The script runs ``fleetdeck``: a folder on PATH holds one."""
    script = run_fleetdeck("completion", "bash", env=env).stdout
    words = line.split(" ")
    with fleetdeck_on_path(env) as (folder, shell_env):
        (folder / "completion.bash").write_text(script)
        quoted = " ".join(shlex.quote(w) for w in words)
        test = (
            f"source {shlex.quote(str(folder / 'completion.bash'))}\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
            f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
            f"_python_argcomplete fleetdeck {shlex.quote(words[-1])} {shlex.quote(words[-2])}\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        done = subprocess.run(
            ["bash", "-c", test],
            env=shell_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]
