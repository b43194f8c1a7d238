"""Nobody but its owner gets into the local agent: on a shared bastion another user (uid 65534)
can neither reach its API nor read its files, a web page cannot drive it, a name is never a
path, a killed agent's files let no one impersonate it, and nothing in the folder the CLI was
started from is ever imported. Real agents, predictors and training runs; the other user is
real too (``setpriv``), and the temporary home is made traversable so what stops them is ours.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from console.backends.base import LogRequest
from console.backends.local import LocalBackend, LocalError
from console.local.client import connect, read_agent_file
from console.local.launch import ensure_agent, lock_held, paths_for
from console.local.paths import AgentPaths
from console.model import DeploymentState, DeployRequest, TrainingRequest
from console.names import InvalidName
from console.profile import Profile
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import DigitsStore, local_backend
from tests.support.cli import run_fleetdeck
from tests.support.other_user import (
    OTHER_UID,
    open_the_way,
    require_other_user,
    run_python,
    start_python,
)
from tests.support.processes import pids_where

ROOT = Path(__file__).resolve().parents[3]

# The other user tries each path and prints what it got: "read" or the error's name.
# A socket is reached from its folder's parent (a socket's path is at most 107 bytes).
TRY_EACH = """
import os, socket, sys
for path in sys.argv[1:]:
    try:
        if path.endswith(".sock"):
            folder, name = os.path.split(path)
            os.chdir(os.path.dirname(folder))
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(os.path.join(os.path.basename(folder), name))
                s.sendall(b"GET /api/v1/hello HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                s.recv(100)
        elif path.endswith("/"):
            import os
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        print(path, "read")
    except OSError as exc:
        print(path, type(exc).__name__)
"""

# The other user's HTTP request on the agent's socket: prints the status and the body.
REQUEST = """
import http.client, os, socket, sys
path, method, target = sys.argv[1:4]
os.chdir(os.path.dirname(path))
connection = http.client.HTTPConnection("localhost")
connection.sock = socket.socket(socket.AF_UNIX)
connection.sock.connect(os.path.basename(path))
connection.request(method, target, body=b"{}", headers={"Content-Type": "application/json"})
answer = connection.getresponse()
print(answer.status, answer.read().decode())
"""

# Someone else's process answering as the agent where the killed one was: on the socket path
# it is given and, when the old agent file named one, on its TCP address. It records every
# byte it is sent.
IMPOSTOR = """
import json, os, socket, sys, threading
unix_path, record, pid, tcp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.chdir(os.path.dirname(unix_path))
body = json.dumps({"api": 1, "pid": pid, "gateway_url": "http://127.0.0.1:9",
                   "api_url": f"http://127.0.0.1:{tcp_port}", "generation": 0}).encode()
def serve(listener):
    while True:
        connection, _ = listener.accept()
        with connection:
            data = connection.recv(65536)
            with open(record, "ab") as sink:
                sink.write(data)
            connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                               b"Content-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % len(body)
                               + body)
listeners = [socket.socket(socket.AF_UNIX)]
listeners[0].bind(os.path.basename(unix_path))
if tcp_port:
    listeners.append(socket.socket())
    listeners[1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listeners[1].bind(("127.0.0.1", tcp_port))
for listener in listeners:
    listener.listen()
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"""


# A process of the agent's own user answering on its socket, as a broken agent might: hello
# and an empty snapshot right, an action without "result", another one not JSON at all.
BROKEN_AGENT = """
import json, os, socket, sys
os.chdir(sys.argv[1])
listener = socket.socket(socket.AF_UNIX)
listener.bind("agent.sock")
listener.listen()
with open("agent.json", "w") as file:
    json.dump({"api": 1, "pid": os.getpid()}, file)
snapshot = {"generation": 0, "deployments": [], "revisions": {}, "pods": {}, "events": {},
            "endpoints": {}, "jobs": [], "job_pods": {}}
answers = {"hello": json.dumps({"api": 1, "pid": os.getpid(), "gateway_url": "http://x"}),
           "snapshot": json.dumps(snapshot), "actions/scale": json.dumps({"ok": True}),
           "actions/restart": "<html>oops</html>"}
print("listening", flush=True)
while True:
    connection, _ = listener.accept()
    with connection:
        request = b""
        while b"\\r\\n\\r\\n" not in request:
            request += connection.recv(65536)
        head, _, body = request.partition(b"\\r\\n\\r\\n")
        length = [int(line.split(b":")[1]) for line in head.split(b"\\r\\n")
                  if line.lower().startswith(b"content-length:")]
        while length and len(body) < length[0]:
            body += connection.recv(65536)
        target = head.decode().split(" ")[1].split("?")[0].removeprefix("/api/v1/")
        body = answers.get(target, "{}").encode()
        connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n"
                           b"Connection: close\\r\\n\\r\\n" % len(body) + body)
"""


def fleetdeck(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args, cwd=cwd, entry_point=True)


def owner_request(
    paths: AgentPaths,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, str]:
    """A raw request from the agent's owner, on the checked socket: (status, body)."""
    sock = connect(paths, int(read_agent_file(paths)["pid"]), 10)
    connection = http.client.HTTPConnection("localhost")
    connection.sock = sock
    connection.request(
        method, f"/api/v1/{target}", body=body, headers={"Connection": "close", **(headers or {})}
    )
    answer = connection.getresponse()
    try:
        return answer.status, answer.read().decode()
    finally:
        answer.close()
        connection.close()


def agent_pid(paths: AgentPaths) -> int:
    return int(read_agent_file(paths)["pid"])


def tcp_ports_listened_by(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def modes_not_private(root: Path) -> dict[str, str]:
    """Every folder under ``root`` that is not 0700 and every file that is not 0600."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        found = path.lstat()
        if stat.S_ISLNK(found.st_mode):
            continue
        expected = 0o700 if stat.S_ISDIR(found.st_mode) else 0o600
        if stat.S_IMODE(found.st_mode) != expected:
            wrong[str(path.relative_to(root))] = oct(stat.S_IMODE(found.st_mode))
    return wrong


def wait_available(backend: LocalBackend, name: str) -> None:
    def available() -> bool:
        row = backend.deployment("default", name)
        return row is not None and row.state is DeploymentState.AVAILABLE

    poll_until(f"{name} available", available, timeout=120)


def wait_jobs_succeeded(backend: LocalBackend, count: int) -> None:
    def succeeded() -> bool:
        phases = [j.phase.value for j in backend.jobs()]
        assert "Failed" not in phases, [(j.name, j.pending_reason) for j in backend.jobs()]
        return phases.count("Succeeded") >= count

    poll_until("the training job succeeded", succeeded, timeout=300)


@pytest.fixture
def agent(profile: Profile) -> AgentPaths:
    """The profile's agent, started; its state folder."""
    ensure_agent(profile)
    return paths_for(profile)


@pytest.fixture
def bastion(agent: AgentPaths) -> AgentPaths:
    """The started agent on a shared machine: another user exists, and the temporary home is
    traversable by everyone (as a home usually is)."""
    require_other_user()
    open_the_way(agent.root.parent, below=Path("/tmp"))
    return agent


def test_another_user_can_neither_reach_the_agents_api_nor_read_its_files(
    bastion: AgentPaths, profile: Profile
) -> None:
    with local_backend(profile) as backend:
        assert backend.deploy(DeployRequest("digits", "digits", 1, "default", 1)).ok
        wait_available(backend, "digits")
        gateway_port = int(backend.gateway_url().rsplit(":", 1)[1])
    tried = [
        bastion.socket,
        bastion.agent_file,
        bastion.database,
        bastion.agent_log,
        bastion.pod_log("default", "digits-1-0"),
    ]
    assert all(path.exists() for path in tried)

    attempt = run_python(TRY_EACH, *map(str, tried), f"{bastion.root}/")

    got = dict(line.rsplit(" ", 1) for line in attempt.stdout.splitlines())
    assert got == {path: "PermissionError" for path in [*map(str, tried), f"{bastion.root}/"]}
    # The gateway serves predictions; no other port of the agent's is open to anyone.
    assert tcp_ports_listened_by(agent_pid(bastion)) == {gateway_port}


def test_the_agent_serves_only_its_owner_even_when_its_socket_is_left_open(
    bastion: AgentPaths, profile: Profile
) -> None:
    # As if someone had opened the folder and the socket to everyone by hand.
    bastion.root.chmod(0o755)
    bastion.socket.chmod(0o666)
    try:
        shutdown = run_python(REQUEST, str(bastion.socket), "POST", "/api/v1/shutdown")
        scale = run_python(REQUEST, str(bastion.socket), "POST", "/api/v1/actions/scale")
    finally:
        bastion.root.chmod(0o700)
        bastion.socket.chmod(0o600)

    for answer in (shutdown, scale):
        assert answer.stdout.startswith("403 "), answer.stdout + answer.stderr
        assert "serves only its owner (uid 0)" in answer.stdout
        assert f"you are uid {OTHER_UID}" in answer.stdout
    status = fleetdeck("agent", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "running" in status.stdout
    assert f"from uid {OTHER_UID}" in bastion.agent_log.read_text()


def test_a_request_from_a_web_page_is_refused_and_the_agent_keeps_running(
    agent: AgentPaths, profile: Profile
) -> None:
    scale = json.dumps({"namespace": "default", "name": "digits", "replicas": 3, "dry_run": False})

    from_a_page = owner_request(
        agent, "GET", "snapshot", headers={"Origin": "http://attacker.example"}
    )
    as_a_form = owner_request(
        agent,
        "POST",
        "actions/scale",
        headers={"Content-Type": "text/plain"},
        body=scale.encode(),
    )
    stop_as_a_form = owner_request(
        agent, "POST", "shutdown", headers={"Content-Type": "text/plain"}, body=b"{}"
    )

    assert from_a_page == (
        403,
        json.dumps({"error": "requests from web pages (an Origin header) are refused"}),
    )
    assert as_a_form[0] == stop_as_a_form[0] == 415
    assert "send the body as application/json" in as_a_form[1]
    assert fleetdeck("agent", "status").returncode == 0  # still running


def test_logs_refuse_a_name_that_is_not_a_label_and_read_nothing(
    agent: AgentPaths, profile: Profile, tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "secret.log"
    secret.parent.mkdir()
    secret.write_text("2026-01-01T00:00:00.000000Z TOP-SECRET\n")
    agent.logs.mkdir(exist_ok=True)  # as once any pod has run: the way up starts there
    around = os.path.relpath(secret.parent, agent.logs)
    refused = []
    with local_backend(profile) as backend:
        for pods, namespace in ((["secret"], around), ([f"../{around}/secret"], "default")):
            with pytest.raises(LocalError) as caught:
                list(backend.logs(LogRequest(pods, namespace)))
            refused.append(str(caught.value))

    assert refused[0].startswith(f"invalid namespace {around!r}: use lower-case letters")
    assert refused[1].startswith(f"invalid pod name '../{around}/secret': use lower-case")
    assert "(a DNS-1123 label" in refused[0]
    assert "(a DNS-1123 subdomain, as Kubernetes pod names are)" in refused[1]
    assert not any("TOP-SECRET" in message for message in refused)


def test_a_pod_log_path_is_never_made_from_a_name_that_is_not_a_label(tmp_path: Path) -> None:
    paths = AgentPaths(tmp_path)
    assert paths.pod_log("default", "digits-1-0") == tmp_path / "logs/default/digits-1-0.log"
    for namespace, pod in (("..", "x"), ("default", "../../agent"), ("a/b", "x"), ("A", "x")):
        with pytest.raises(InvalidName, match=r"DNS-1123 (label|subdomain)"):
            paths.pod_log(namespace, pod)


def test_parameters_that_are_not_numbers_are_refused_saying_what_is_expected(
    agent: AgentPaths,
) -> None:
    cases = {
        "logs?pod=digits-1-0&tail=abc": "tail='abc': expected a number of lines: an integer >= 0",
        "logs?pod=digits-1-0&tail=-1": "tail='-1': expected a number of lines: an integer >= 0",
        "logs?pod=digits-1-0&since=soon": "since='soon': expected seconds: a number >= 0",
        "snapshot?after=x": "after='x': expected a generation: an integer >= 0",
        "snapshot?after=-5": "after='-5': expected a generation: an integer >= 0",
        "snapshot?wait=later": "wait='later': expected seconds to wait: a number >= 0",
        "snapshot?wait=nan": "wait='nan': expected seconds to wait: a number >= 0",
    }

    answers = {target: owner_request(agent, "GET", target) for target in cases}

    assert answers == {
        target: (400, json.dumps({"error": message})) for target, message in cases.items()
    }


def test_an_action_with_a_body_that_is_not_an_object_is_refused(agent: AgentPaths) -> None:
    json_headers = {"Content-Type": "application/json"}

    listed = owner_request(agent, "POST", "actions/scale", headers=json_headers, body=b"[1]")
    broken = owner_request(agent, "POST", "actions/scale", headers=json_headers, body=b"{x")

    assert listed == (
        400,
        json.dumps({"error": "the body must be a JSON object of scale's arguments"}),
    )
    assert broken == (400, json.dumps({"error": "the body is not JSON"}))


def test_a_change_sent_without_a_user_is_recorded_as_the_owners(
    agent: AgentPaths, profile: Profile
) -> None:
    with local_backend(profile, user="") as backend:
        assert backend.deploy(DeployRequest("digits", "digits", 1, "default", 1)).ok
        (revision,) = backend.history("default", "digits")

    assert revision.change_cause == "deploy digits v1 by root via fleetdeck"


def test_code_in_the_clis_working_folder_is_never_imported(
    profile: Profile, digits_store: DigitsStore, tmp_path: Path
) -> None:
    hostile = tmp_path / "where-fleetdeck-was-typed"
    packages = ("console", "serving", "training")
    for package in packages:
        (hostile / package).mkdir(parents=True)
        marker = hostile / f"imported-{package}"
        (hostile / package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")

    started = fleetdeck("agent", "start", cwd=hostile)
    assert started.returncode == 0, started.stdout + started.stderr
    deployed = fleetdeck(
        "deploy", "digits", "--model", "digits", "--version", "1", "--replicas", "1", cwd=hostile
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    trained = fleetdeck(
        "train", "--model", "digits", "--data", str(digits_store.data), "--epochs", "1",
        "--param", "width=8", cwd=hostile,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    with local_backend(profile) as backend:
        wait_available(backend, "digits")
        wait_jobs_succeeded(backend, 1)

    assert sorted(p.name for p in hostile.iterdir()) == sorted(packages)  # no marker
    paths = paths_for(profile)
    cache = str(paths.cache)
    predictors = pids_where(lambda words: "serving" in words and cache in words)
    assert predictors
    for pid in [agent_pid(paths), *predictors]:
        assert os.readlink(f"/proc/{pid}/cwd") == str(paths.root)


def test_every_file_in_the_state_folder_is_private_even_those_an_older_agent_left_open(
    profile: Profile, digits_store: DigitsStore
) -> None:
    paths = paths_for(profile)
    old_log = paths.pod_log("default", "old-1-0")
    old_log.parent.mkdir(parents=True, mode=0o755)
    for folder in (paths.root, paths.logs, old_log.parent):
        folder.chmod(0o755)
    for old in (old_log, paths.agent_log):
        old.write_text("an older agent's line\n")
        old.chmod(0o644)

    with local_backend(profile) as backend:
        assert backend.deploy(DeployRequest("digits", "digits", 1, "default", 1)).ok
        (trained,) = backend.train(
            TrainingRequest("digits", str(digits_store.data), epochs=1, params={"width": 8})
        )
        assert trained.ok, trained.message
        wait_available(backend, "digits")
        wait_jobs_succeeded(backend, 1)

    assert paths.cache.is_dir()
    assert any(paths.logs.rglob("train-*.log"))
    assert modes_not_private(paths.root) == {}


def test_a_killed_agents_files_let_no_other_user_impersonate_it(
    bastion: AgentPaths, profile: Profile, tmp_path: Path
) -> None:
    deployed = fleetdeck("deploy", "digits", "--model", "digits", "--version", "1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    old = read_agent_file(bastion)
    os.kill(int(old["pid"]), signal.SIGKILL)
    poll_until("the killed agent's lock is free", lambda: not lock_held(bastion.lock), timeout=30)
    assert bastion.agent_file.exists()  # left behind, with the socket
    assert bastion.socket.exists()

    # The other user listens where the old agent did: its TCP address if the old file named
    # one, and a socket of its own, put where the agent's was.
    lair = tmp_path / "impostor"
    lair.mkdir()
    os.chown(lair, OTHER_UID, OTHER_UID)
    record = lair / "received"
    old_port = int(str(old.get("api_url", ":0")).rsplit(":", 1)[1])
    impostor = start_python(
        IMPOSTOR, str(lair / "agent.sock"), str(record), str(old["pid"]), str(old_port)
    )
    try:
        assert impostor.stdout is not None
        assert impostor.stdout.readline().strip() == "listening"
        os.replace(lair / "agent.sock", bastion.socket)

        status = fleetdeck("agent", "status")
        scaled = fleetdeck("scale", "digits", "--replicas", "2")
        after = fleetdeck("agent", "status", "--json")
    finally:
        impostor.kill()
        impostor.wait()

    assert status.returncode == 3, status.stdout + status.stderr
    assert f"no agent runs for profile {profile.name!r}" in status.stdout
    assert f"belongs to uid {OTHER_UID}" in status.stdout
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    assert "KeyError" not in scaled.stderr
    assert not record.exists() or record.read_bytes() == b""  # nothing was sent to it
    now = json.loads(after.stdout)
    assert now["running"] is True
    assert now["pid"] != old["pid"]
    assert bastion.socket.stat().st_uid == os.geteuid()


def test_an_answer_without_a_result_or_not_json_is_a_clear_error(profile: Profile) -> None:
    paths = paths_for(profile)
    paths.make_private()
    broken = subprocess.Popen(
        [sys.executable, "-I", "-c", BROKEN_AGENT, str(paths.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert broken.stdout is not None
        assert broken.stdout.readline().strip() == "listening"
        with local_backend(profile) as backend:
            with pytest.raises(LocalError) as no_result:
                backend.scale("default", "digits", 2)
            with pytest.raises(LocalError) as not_json:
                backend.restart("default", "digits")
    finally:
        broken.kill()
        broken.wait()

    assert str(no_result.value) == "the agent's answer to scale has no result: {'ok': True}"
    assert str(not_json.value) == (
        "restart: the agent's answer to actions/restart is not JSON: b'<html>oops</html>'"
    )
