"""The fleetdeck images, built by ``scripts/build-images`` and run with buildah: no Docker engine,
no registry.

The script caches the Debian base and buildah's storage (vfs driver, layers) under
``${XDG_CACHE_HOME:-~/.cache}/fleetdeck/images`` (``FLEETDECK_IMAGES_DIR``); a rerun rebuilds
only the layers whose inputs changed. A container runs with ``buildah run --isolation chroot``:
the host's network (a port it listens on is reachable on 127.0.0.1, and so is the test HDFS) and
the host's process ids (a signal goes straight to the container's process).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-images"
PREDICTOR_IMAGE = "localhost/fleetdeck-predictor:latest"
TRAINING_IMAGE = "localhost/fleetdeck-training:latest"

Progress = Callable[[str], None]


class ImageError(Exception):
    """Building or running an image failed (the message carries the tool's own words)."""


def images_dir() -> Path:
    explicit = os.environ.get("FLEETDECK_IMAGES_DIR", "").strip()
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fleetdeck" / "images"


def buildah(*args: str) -> list[str]:
    """A buildah command line on the storage scripts/build-images builds into."""
    folder = images_dir()
    return [
        "buildah",
        "--storage-driver",
        "vfs",
        "--root",
        str(folder / "storage"),
        "--runroot",
        str(folder / "runroot"),
        *args,
    ]


def _run(command: Sequence[str], timeout: float = 300) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ImageError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def why_no_buildah() -> str | None:
    """None when buildah is there (installing it with apt-get as root if missing), else why not."""
    if shutil.which("buildah"):
        return None
    if not shutil.which("apt-get"):
        return "buildah is not installed, and there is no apt-get to install it"
    if os.geteuid() != 0:
        return "buildah is not installed (as root: apt-get install buildah debootstrap)"
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "buildah", "debootstrap"],
    ):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            return f"buildah cannot be installed: {' '.join(command)}: {done.stderr.strip()[-500:]}"
    return None if shutil.which("buildah") else "buildah is still missing after apt-get install"


def build_images(log: Path, progress: Progress | None = None) -> dict[str, str]:
    """Run scripts/build-images (both images); each image's name and size. Its output goes to
    ``log``; a failure raises ImageError with the log's end."""
    if progress:
        progress(f"building the images (first run: several minutes; log: {log})")
    with log.open("w") as out:
        done = subprocess.run(
            [str(BUILD_SCRIPT)], cwd=ROOT, stdout=subprocess.PIPE, stderr=out, text=True
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ImageError(f"scripts/build-images failed ({done.returncode}):\n{tail}")
    sizes = dict(line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)
    if progress:
        progress(", ".join(f"{name} {size}" for name, size in sizes.items()))
    return sizes


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent pid is the second field after the command name, which may hold spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _command_line(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


class Container:
    """A working container of ``image`` (``buildah from``); ``remove`` deletes it."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.id = _run(buildah("from", "--quiet", image)).strip()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The image's OCI configuration (User, Env, Entrypoint, Cmd, ...)."""
        found = json.loads(_run(buildah("inspect", "--type", "container", self.id)))
        config: dict[str, Any] = found["OCIv1"]["config"]
        return config

    def default_command(self) -> list[str]:
        config = self.config
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]

    def start(
        self,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Run ``command`` (default: the image's entrypoint and command) as the image's user,
        in the image's working directory, with its environment plus ``env``."""
        if self.process is not None:
            raise ImageError(f"{self.id} already runs a process")
        settings = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            buildah(
                "run",
                "--isolation",
                "chroot",
                *settings,
                self.id,
                "--",
                *(command or self.default_command()),
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self.process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait(self, timeout: float) -> int:
        if self.process is None:
            raise ImageError("nothing was started")
        return self.process.wait(timeout)

    def main_pid(self, word: str, timeout: float = 60) -> int:
        """The host pid of the container's process whose command line holds ``word`` (under
        chroot isolation it shares the host's pid namespace, below buildah's own processes)."""
        if self.process is None:
            raise ImageError("nothing was started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in _descendants(self.process.pid):
                words = _command_line(pid)
                # buildah-chroot-runtime and buildah-chroot-exec stand between buildah and it.
                if word in words and not words[0].startswith("buildah"):
                    return pid
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise ImageError(f"no process running {word!r} in {self.id}:\n{self.log()}")

    def terminate(self, word: str) -> None:
        """SIGTERM to the container's own process, as the kubelet sends it."""
        os.kill(self.main_pid(word), signal.SIGTERM)

    def files(self, pattern: str) -> list[str]:
        """Paths (inside the container) of the files matching ``pattern`` in its file system."""
        root = Path(_run(buildah("mount", self.id)).strip())
        try:
            return sorted("/" + str(p.relative_to(root)) for p in root.rglob(pattern))
        finally:
            _run(buildah("umount", self.id))

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self._log is not None:
            self._log.close()
        subprocess.run(buildah("rm", self.id), capture_output=True)


def _descendants(pid: int) -> Iterator[int]:
    for child in _children(pid):
        yield child
        yield from _descendants(child)
