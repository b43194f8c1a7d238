"""A real HDFS (NameNode + DataNode with WebHDFS) on 127.0.0.1 for fleetdeck's tests.

Standard library only: ``tests/infra/hdfs`` runs this file with any Python 3, and the pytest
fixtures (``tests/infra/hdfs_fixtures.py``) import it.

What it does:

* **build**: the tiny Java main in ``tests/infra/minidfs/`` (Hadoop's ``MiniDFSCluster`` from
  Maven Central) is built with Maven into
  ``${XDG_CACHE_HOME:-~/.cache}/fleetdeck/hdfs/<hadoop version>/<source hash>/`` (the jar and
  its classpath), with the Maven repository in ``.../fleetdeck/m2``. Both live outside the
  checkout, so a fresh clone on the same machine (CI) reuses them. A build runs in a temporary
  folder that is renamed into place when complete, under a lock, so concurrent callers build once.
* **up**: starts the cluster detached (own session, stdin from /dev/null, so it outlives the
  shell), records it in ``.../fleetdeck/run/hdfs/``, waits until WebHDFS answers and returns
  ``http://127.0.0.1:PORT``. Running it again while the cluster runs changes nothing.
* **down**: stops it (SIGTERM to its process group, SIGKILL after a grace period) and removes its
  state and data. **status**: says what runs.

Command line (also ``tests/infra/hdfs``)::

    hdfs_cluster.py up [--http-port N] [--rpc-port N] [--timeout S]   # prints the export line
    hdfs_cluster.py down
    hdfs_cluster.py status [--json]                       # exit 0 running, 3 not running
    hdfs_cluster.py build                                 # build only (warms the cache)

Progress goes to stderr; stdout carries only the ``export`` line, so ``eval "$(tests/infra/hdfs
up)"`` works. Environment: ``FLEETDECK_HDFS_HTTP_PORT`` (default 19870; the WebHDFS port that
URLs and ``hdfs://`` store roots use), ``FLEETDECK_HDFS_RPC_PORT`` (default 19820), either may be
0 for a free port; ``FLEETDECK_HDFS_JAVA_OPTS``; ``FLEETDECK_HDFS_START_TIMEOUT`` (seconds,
default 180); ``FLEETDECK_HADOOP_VERSION`` (default 3.5.0).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

HOST = "127.0.0.1"
HADOOP_VERSION = os.environ.get("FLEETDECK_HADOOP_VERSION", "3.5.0")
DEFAULT_HTTP_PORT = 19870
DEFAULT_RPC_PORT = 19820
DEFAULT_JAVA_OPTS = (
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.net.preferIPv4Stack=true",
)
DEFAULT_START_TIMEOUT = 180.0
STOP_GRACE = 30.0
MAIN_CLASS = "io.fleetdeck.minidfs.MiniDfs"
READY_MARK = "MINIDFS_READY"
PROJECT_DIR = Path(__file__).resolve().parent / "minidfs"
WEBHDFS_PROBE_USER = "fleetdeck"

Progress = Callable[[str], None]

# JVMs started by this process, so that it can reap them (no zombies) when it stops them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class InfraError(Exception):
    """The HDFS could not be built, started or reached. ``str()`` is one line for a person."""


def _stderr_progress(message: str) -> None:
    print(f"hdfs: {message}", file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    del message


# --------------------------------------------------------------------------------------------
# Where things live


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetdeck"


def maven_repo() -> Path:
    return cache_root() / "m2"


def run_dir() -> Path:
    return cache_root() / "run" / "hdfs"


def _lock_path() -> Path:
    return cache_root() / "run" / "hdfs.lock"


def source_hash() -> str:
    """A short hash of the Java project (pom.xml and src/): part of the build's cache key."""
    digest = hashlib.sha256()
    files = [PROJECT_DIR / "pom.xml", *sorted((PROJECT_DIR / "src").rglob("*"))]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(PROJECT_DIR).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


def build_dir(version: str = HADOOP_VERSION) -> Path:
    return cache_root() / "hdfs" / version / source_hash()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Tools


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise InfraError("java not found on PATH: the real HDFS needs Java 17 or newer")
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfraError(f"{java} -version failed: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise InfraError(f"could not read the Java version from `{java} -version`")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_x"
        major = int(match.group(2))
    if major < 17:
        raise InfraError(f"{java} is Java {major}: Hadoop {HADOOP_VERSION} needs Java 17 or newer")
    return java


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("mvn (Maven) not found on PATH: it builds the real HDFS on first use")
    return mvn


# --------------------------------------------------------------------------------------------
# Build


@dataclasses.dataclass(frozen=True)
class Build:
    directory: Path
    jar: Path
    classpath: tuple[str, ...]

    def java_classpath(self) -> str:
        return os.pathsep.join((str(self.jar), *self.classpath))

    @property
    def class_archive(self) -> Path:
        """AppCDS archive of the classes a start and a few WebHDFS calls load (faster start)."""
        return self.directory / "minidfs.jsa"


def _load_build(directory: Path) -> Build | None:
    """The build in ``directory`` if it is complete and every jar it names is still there."""
    jar = directory / "minidfs.jar"
    cp_file = directory / "classpath.txt"
    if not (directory / "build.json").is_file() or not jar.is_file() or not cp_file.is_file():
        return None
    entries = tuple(e for e in cp_file.read_text().strip().split(os.pathsep) if e)
    if not entries or not all(Path(e).is_file() for e in entries):
        return None
    return Build(directory, jar, entries)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PHASE = re.compile(r"--- (?:maven-)?([\w.-]+?)(?:-plugin)?:[\w.-]+:([\w-]+)")
_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+ \(([\d.]+) (B|kB|MB|GB)")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def ensure_built(progress: Progress = _stderr_progress, version: str = HADOOP_VERSION) -> Build:
    """Return the cached build for ``version``, building it first when it is missing."""
    target = build_dir(version)
    build = _load_build(target)
    if build is not None and _cds_settled(build):
        return build
    with _file_lock(target.parent / ".build.lock"):
        build = _load_build(target)  # built by someone else while we waited
        if build is None:
            build = _build(target, version, progress)
        if not _cds_settled(build):
            _train_class_archive(build, progress)
        return build


def _build(target: Path, version: str, progress: Progress) -> Build:
    mvn = find_maven()
    find_java()
    repo = maven_repo()
    first = not (repo / "org" / "apache" / "hadoop" / "hadoop-minicluster" / version).is_dir()
    progress(
        f"building MiniDFS for Hadoop {version} into {target}"
        + (f" (first run: downloads ~170 MB from Maven Central into {repo})" if first else "")
    )
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        src = tmp / "src"
        shutil.copytree(PROJECT_DIR, src, ignore=shutil.ignore_patterns("target"))
        log_path = tmp / "build.log"
        cmd = [
            mvn,
            "-B",
            f"-Dmaven.repo.local={repo}",
            f"-Dhadoop.version={version}",
            "-Dmaven.test.skip=true",
            "package",
            "dependency:build-classpath",
            f"-Dmdep.outputFile={tmp / 'classpath.txt'}",
        ]
        _run_maven(cmd, src, log_path, progress)
        shutil.move(str(src / "target" / "minidfs.jar"), tmp / "minidfs.jar")
        shutil.rmtree(src)
        seconds = time.monotonic() - started
        info = {
            "hadoop_version": version,
            "source_hash": target.name,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(seconds, 1),
            "maven_repo": str(repo),
        }
        (tmp / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp made it private; the result is a plain cache entry
        if target.exists():  # an incomplete or stale build (its jars were deleted): replace it
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    build = _load_build(target)
    if build is None:
        raise InfraError(f"the build in {target} is incomplete after a successful Maven run")
    progress(f"built in {seconds:.0f} s")
    _prune_old_builds(target)
    return build


def _prune_old_builds(keep: Path, unused_days: float = 14.0) -> None:
    """Remove builds of other sources (older checkouts) not started for ``unused_days``."""
    cutoff = time.time() - unused_days * 86400
    for sibling in keep.parent.iterdir():
        if sibling == keep or sibling.name.startswith(".") or not sibling.is_dir():
            continue
        marker = sibling / "last-used"
        used = marker if marker.exists() else sibling / "build.json"
        with contextlib.suppress(OSError):
            if used.stat().st_mtime < cutoff:
                shutil.rmtree(sibling, ignore_errors=True)


def _run_maven(cmd: list[str], cwd: Path, log_path: Path, progress: Progress) -> None:
    tail: deque[str] = deque(maxlen=40)
    downloads = 0
    downloaded_bytes = 0.0
    last_report = time.monotonic()
    with log_path.open("w") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise InfraError(f"could not run Maven: {exc}") from exc
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = _ANSI.sub("", raw.rstrip("\n"))
            log.write(line + "\n")
            tail.append(line)
            got = _DOWNLOADED.search(line)
            if got:
                downloads += 1
                downloaded_bytes += float(got.group(1)) * _UNITS[got.group(2)]
                now = time.monotonic()
                if now - last_report >= 5:
                    last_report = now
                    progress(f"  downloaded {downloads} files ({downloaded_bytes / 1e6:.0f} MB)")
                continue
            phase = _PHASE.search(line)
            if phase:
                progress(f"  maven {phase.group(1)}:{phase.group(2)}")
        code = proc.wait()
    if downloads:
        progress(f"  downloaded {downloads} files ({downloaded_bytes / 1e6:.0f} MB) in total")
    if code != 0:
        errors = [t for t in tail if t.startswith("[ERROR]")] or list(tail)
        first = errors[0] if errors else "(no output)"
        keep = log_path.parent.parent / "last-failed-build.log"
        with contextlib.suppress(OSError):
            shutil.copyfile(log_path, keep)
        raise InfraError(f"Maven build of MiniDFS failed (exit {code}): {first} (log: {keep})")


# --------------------------------------------------------------------------------------------
# Class-data sharing: a dynamic AppCDS archive of the classes that a start and a few WebHDFS
# calls load, made once per build by a training run. Starting with it takes ~3.6 s instead of
# ~6 s and ~245 MiB of RSS instead of ~295 MiB (measured here). The JVM checks the archive
# against the classpath and its own version and ignores it (with a warning in the log) when
# they no longer match, so a stale archive costs speed, never correctness.


def _cds_settled(build: Build) -> bool:
    return build.class_archive.is_file() or (build.directory / "cds-failed.log").is_file()


def _train_class_archive(build: Build, progress: Progress) -> bool:
    java = find_java()
    archive = build.class_archive
    tmp_archive = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
    failed_log = build.directory / "cds-failed.log"
    base_dir = tempfile.mkdtemp(prefix="fleetdeck-hdfs-cds-")
    log_path = Path(base_dir) / "minidfs.log"
    progress("recording a class-data archive for faster starts (one training run)")
    started = time.monotonic()
    cmd = [
        java,
        *DEFAULT_JAVA_OPTS,
        f"-XX:ArchiveClassesAtExit={tmp_archive}",
        "-cp",
        build.java_classpath(),
        MAIN_CLASS,
        "--basedir",
        os.path.join(base_dir, "dfs"),
        "--rpc-port",
        "0",
        "--http-port",
        "0",
        "--wait",
        "stdin",
    ]
    proc: subprocess.Popen[bytes] | None = None
    why = ""
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log)
        deadline = time.monotonic() + DEFAULT_START_TIMEOUT
        ports = None
        while ports is None and proc.poll() is None and time.monotonic() < deadline:
            ports = _ready_line(log_path)
            time.sleep(0.25)
        if ports is None:
            why = "the training run did not come up"
        else:
            _exercise_webhdfs(f"http://{HOST}:{int(ports['httpPort'])}")
            assert proc.stdin is not None
            proc.stdin.close()  # MiniDfs closes the cluster and exits; the JVM writes the archive
            code = proc.wait(timeout=120)
            if code == 0 and tmp_archive.is_file():
                os.replace(tmp_archive, archive)
                size = archive.stat().st_size / 2**20
                progress(
                    f"class-data archive ready ({size:.0f} MiB, {time.monotonic() - started:.0f} s)"
                )
                return True
            why = f"the training run exited with {code} and no archive"
    except (OSError, ValueError, InfraError, subprocess.TimeoutExpired) as exc:
        why = f"{type(exc).__name__}: {exc}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if why:
            with contextlib.suppress(OSError):
                failed_log.write_text(f"{why}\n\n{_tail(log_path, 60)}\n")
        with contextlib.suppress(OSError):
            tmp_archive.unlink()
        shutil.rmtree(base_dir, ignore_errors=True)
    progress(f"no class-data archive ({why}); starts stay slower (see {failed_log})")
    return False


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    """One HTTP request with http.client, redirects not followed: status, Location, body."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=30)
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=body)
        res = conn.getresponse()
        return res.status, res.getheader("Location") or "", res.read()
    finally:
        conn.close()


def _exercise_webhdfs(url: str) -> None:
    """What the tests do most: folders, a write and a read through the DataNode, list, rename."""

    def call(method: str, path: str, **params: str) -> tuple[int, str, bytes]:
        query = urllib.parse.urlencode({"user.name": WEBHDFS_PROBE_USER, **params})
        return _http(method, f"{url}/webhdfs/v1{path}?{query}")

    call("PUT", "/cds/a", op="MKDIRS")
    status, location, _ = call("PUT", "/cds/a/f", op="CREATE")
    if status != 307:
        raise InfraError(f"WebHDFS CREATE answered {status}")
    _http("PUT", location, b"x" * 4096)
    status, location, _ = call("GET", "/cds/a/f", op="OPEN")
    if status == 307:
        _http("GET", location)
    call("GET", "/cds/a", op="LISTSTATUS")
    call("PUT", "/cds/a", op="RENAME", destination="/cds/b", renameoptions="NONE")
    call("PUT", "/cds/b", op="RENAME", destination="/cds/c")
    call("GET", "/cds/c/f", op="GETFILESTATUS")
    call("GET", "/cds/missing", op="GETFILESTATUS")
    call("DELETE", "/cds", op="DELETE", recursive="true")


# --------------------------------------------------------------------------------------------
# Running cluster


@dataclasses.dataclass(frozen=True)
class State:
    pid: int
    http_port: int
    rpc_port: int
    base_dir: str
    log: str
    started_at: float
    hadoop_version: str
    build: str
    datanode_http_port: int = 0
    ready: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def export_line(self) -> str:
        return f"export FLEETDECK_HDFS_URL={self.url}"


def _state_file() -> Path:
    return run_dir() / "state.json"


def read_state() -> State | None:
    try:
        raw = json.loads(_state_file().read_text())
        return State(**raw)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(state: State) -> None:
    path = _state_file()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(state), indent=2) + "\n")
    os.replace(tmp, path)


def _is_ours(pid: int) -> bool:
    """True while ``pid`` is a live MiniDfs JVM (not a zombie, not a recycled pid)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: ask it. (Its /proc cmdline is briefly empty while it execs.)
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if not Path("/proc/self").exists():  # no procfs: fall back to signal 0
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True
        return False
    return MAIN_CLASS.encode() in cmdline


def webhdfs_answers(url: str, timeout: float = 3.0) -> bool:
    """True when ``GET /webhdfs/v1/?op=GETFILESTATUS`` on ``url`` answers with the root's status."""
    probe = f"{url.rstrip('/')}/webhdfs/v1/?op=GETFILESTATUS&user.name={WEBHDFS_PROBE_USER}"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as res:
            body: Any = json.loads(res.read())
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("FileStatus", {}).get("type") == "DIRECTORY"


def _wait_webhdfs(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if webhdfs_answers(url):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def status() -> State | None:
    """The running cluster's state, or None (stale state of a dead cluster counts as None)."""
    state = read_state()
    if state is None or not state.ready or not _is_ours(state.pid):
        return None
    return state


def _port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        port = int(value)
    except ValueError:
        raise InfraError(f"{name}={value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise InfraError(f"{name}={value!r} is not a port number")
    return port


def default_http_port() -> int:
    return _env_port("FLEETDECK_HDFS_HTTP_PORT", DEFAULT_HTTP_PORT)


def default_rpc_port() -> int:
    return _env_port("FLEETDECK_HDFS_RPC_PORT", DEFAULT_RPC_PORT)


def _java_opts() -> list[str]:
    custom = os.environ.get("FLEETDECK_HDFS_JAVA_OPTS")
    return shlex.split(custom) if custom is not None else list(DEFAULT_JAVA_OPTS)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def up(
    http_port: int | None = None,
    rpc_port: int | None = None,
    timeout: float | None = None,
    progress: Progress = _stderr_progress,
) -> tuple[State, bool]:
    """Start the cluster unless it runs. Returns its state and whether this call started it."""
    http_port = default_http_port() if http_port is None else http_port
    rpc_port = default_rpc_port() if rpc_port is None else rpc_port
    if timeout is None:
        timeout = float(os.environ.get("FLEETDECK_HDFS_START_TIMEOUT", DEFAULT_START_TIMEOUT))
    with _file_lock(_lock_path()):
        state = read_state()
        if state is not None and _is_ours(state.pid):
            if state.ready and _wait_webhdfs(state.url, min(timeout, 15.0)):
                progress(f"already running (pid {state.pid}) at {state.url}")
                return state, False
            raise InfraError(
                f"a MiniDFS (pid {state.pid}) runs but WebHDFS at {state.url} does not answer; "
                f"see {state.log} or run `tests/infra/hdfs down`"
            )
        if state is not None or run_dir().exists():
            progress("removing the state of a cluster that is no longer running")
            _remove_state(state)
        java = find_java()
        build = ensure_built(progress)
        for name, port in (("HTTP", http_port), ("RPC", rpc_port)):
            if not _port_free(port):
                raise InfraError(
                    f"port {port} on {HOST} (NameNode {name}) is in use: set "
                    f"FLEETDECK_HDFS_{name}_PORT to another port (or 0 for a free one)"
                )
        return _start(java, build, http_port, rpc_port, timeout, progress), True


def _start(
    java: str, build: Build, http_port: int, rpc_port: int, timeout: float, progress: Progress
) -> State:
    directory = run_dir()
    directory.mkdir(parents=True, exist_ok=True)
    base_dir = tempfile.mkdtemp(prefix="fleetdeck-hdfs-")
    log_path = directory / "minidfs.log"
    cmd = [
        java,
        *_java_opts(),
        *(
            [f"-XX:SharedArchiveFile={build.class_archive}"]
            if build.class_archive.is_file()
            else []
        ),
        "-cp",
        build.java_classpath(),
        MAIN_CLASS,
        "--basedir",
        os.path.join(base_dir, "dfs"),
        "--rpc-port",
        str(rpc_port),
        "--http-port",
        str(http_port),
        "--wait",
        "signal",
    ]
    with contextlib.suppress(OSError):
        (build.directory / "last-used").touch()
    progress(f"starting NameNode + DataNode (HTTP {http_port or 'any'}, RPC {rpc_port or 'any'})")
    started = time.monotonic()
    # Detached: a session of its own (setsid, so no controlling terminal and no SIGHUP when the
    # shell goes), stdin from /dev/null, output to the log. Its pid is its process group id.
    with log_path.open("ab") as log:
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise InfraError(f"could not start {java}: {exc}") from exc
    pid = proc.pid
    # Keep the handle: when this process outlives the cluster (a pytest session that started it)
    # `down` reaps it; when it doesn't (the command line), the JVM is re-parented to init.
    _CHILDREN[pid] = proc
    state = State(
        pid=pid,
        http_port=http_port,
        rpc_port=rpc_port,
        base_dir=base_dir,
        log=str(log_path),
        started_at=time.time(),
        hadoop_version=HADOOP_VERSION,
        build=str(build.directory),
    )
    _write_state(state)  # before it is ready, so that `down` can stop a start that hangs
    deadline = started + timeout
    ports: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if ports is None:
            ports = _ready_line(log_path)
        if ports is not None:
            state = dataclasses.replace(
                state,
                http_port=int(ports["httpPort"]),
                rpc_port=int(ports["rpcPort"]),
                datanode_http_port=int(ports.get("dataNodeHttpPort", 0)),
            )
            if webhdfs_answers(state.url):
                state = dataclasses.replace(state, ready=True)
                _write_state(state)
                progress(f"WebHDFS answers at {state.url} after {time.monotonic() - started:.1f} s")
                return state
        if not _is_ours(pid):
            _fail_start(state, "the JVM exited during start-up")
        time.sleep(0.25)
    _fail_start(state, f"WebHDFS did not answer within {timeout:.0f} s")


def _ready_line(log_path: Path) -> dict[str, Any] | None:
    try:
        with log_path.open(errors="replace") as log:
            for line in log:
                if line.startswith(READY_MARK):
                    parsed: dict[str, Any] = json.loads(line[len(READY_MARK) :])
                    return parsed
    except (OSError, ValueError):
        return None
    return None


def _fail_start(state: State, why: str) -> NoReturn:
    log_path = Path(state.log)
    kept = run_dir().parent / "hdfs-last-failed-start.log"
    with contextlib.suppress(OSError):
        shutil.copyfile(log_path, kept)
    tail = _tail(log_path)
    _stop_pid(state.pid)
    _remove_state(state)
    raise InfraError(f"{why} (log: {kept}); last lines:\n{tail}")


def _stop_pid(pid: int, grace: float = STOP_GRACE) -> None:
    if not _is_ours(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _is_ours(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _is_ours(pid) and time.monotonic() < deadline + 10:
        time.sleep(0.1)


def _remove_state(state: State | None) -> None:
    if state is not None and state.base_dir:
        shutil.rmtree(state.base_dir, ignore_errors=True)
    shutil.rmtree(run_dir(), ignore_errors=True)


def down(progress: Progress = _stderr_progress) -> bool:
    """Stop the cluster and remove its state and data. Returns whether one was running."""
    with _file_lock(_lock_path()):
        state = read_state()
        running = state is not None and _is_ours(state.pid)
        if state is not None and running:
            progress(f"stopping pid {state.pid}")
            _stop_pid(state.pid)
        if state is not None or run_dir().exists():
            _remove_state(state)
        return running


# --------------------------------------------------------------------------------------------
# Command line


def _describe(state: State) -> dict[str, Any]:
    info = dataclasses.asdict(state)
    info["url"] = state.url
    info["rss_bytes"] = rss_bytes(state.pid)
    info["uptime_s"] = round(time.time() - state.started_at, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/infra/hdfs",
        description="A real HDFS (Hadoop MiniDFSCluster: NameNode + DataNode, WebHDFS) on "
        "127.0.0.1 for fleetdeck's tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start (building first if needed); prints the export line")
    p_up.add_argument("--http-port", type=int, help=f"WebHDFS port (default {DEFAULT_HTTP_PORT})")
    p_up.add_argument("--rpc-port", type=int, help=f"RPC port (default {DEFAULT_RPC_PORT})")
    p_up.add_argument("--timeout", type=float, help="seconds to wait for WebHDFS")
    p_up.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    sub.add_parser("down", help="stop and remove state and data")
    p_status = sub.add_parser("status", help="what runs (exit 0 running, 3 not)")
    p_status.add_argument("--json", action="store_true")
    sub.add_parser("build", help="build (or check) the cached MiniDFS only")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            started, _ = up(
                args.http_port,
                args.rpc_port,
                args.timeout,
                progress=_quiet if args.quiet else _stderr_progress,
            )
            print(started.export_line(), flush=True)
            return 0
        if args.command == "down":
            if not down():
                _stderr_progress("not running")
            return 0
        if args.command == "status":
            state = status()
            if args.json:
                print(json.dumps(_describe(state) if state else {"running": False}, indent=2))
            elif state is None:
                print("hdfs: not running")
            else:
                info = _describe(state)
                rss = info["rss_bytes"]
                answers = "answers" if webhdfs_answers(state.url) else "DOES NOT ANSWER"
                print(
                    f"hdfs: running pid {state.pid}, Hadoop {state.hadoop_version}, "
                    f"WebHDFS {state.url} ({answers}), RPC {HOST}:{state.rpc_port}, "
                    f"DataNode HTTP {HOST}:{state.datanode_http_port}, "
                    f"RSS {rss / 2**20:.0f} MiB, up {info['uptime_s']:.0f} s"
                    if rss is not None
                    else f"hdfs: running pid {state.pid} at {state.url} ({answers})"
                )
                print(f"hdfs: data {state.base_dir}, log {state.log}")
                print(state.export_line())
            return 0 if state is not None else 3
        if args.command == "build":
            build = ensure_built()
            print(build.directory)
            return 0
    except InfraError as exc:
        print(f"hdfs: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
