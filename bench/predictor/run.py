"""Predictor benchmark: our predictor against the HTTP ceiling and KServe, in one run.

    python -m bench.predictor.run [--duration 10] [--write]

Every server runs pinned to core 0 and wrk to core 1, with the same request body (one real 8×8
digit) at concurrency 1, 16 and 64. Reports req/s, p50/p99, idle RSS and cold start (process
start to ready), the ratios the targets are set in, and with ``--write`` records the table in
bench/README.md. KServe runs from its own virtualenv, ~/.cache/fleetdeck/kserve-venv (made on the
first run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.readme import record
from tests.support.kserve_venv import kserve_python as ensure_kserve_venv

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fleetdeck" / "bench"
CONCURRENCY = (1, 16, 64)
AIOHTTP_INT8 = "fleetdeck LiteRT int8, V1 (aiohttp)"
HTTPTOOLS_INT8 = "fleetdeck LiteRT int8, V1 (httptools)"
TRANSPORT_MINIMAL = "minimal handler on fleetdeck's aiohttp transport"
SERVER_CORE, LOAD_CORE = "0", "1"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Target:
    label: str
    command: list[str]
    path: str
    body: bytes
    rows: dict[int, dict[str, float]] = field(default_factory=dict)
    cold_start_s: float = 0.0
    idle_rss_mb: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants: the server's
    own cost per request, which a neighbour's load on a shared machine barely moves."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total_kb, todo = 0, _tree(pid)
    for current in todo:
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def wait_ready(
    port: int, process: subprocess.Popen[bytes], started: float, timeout: float = 180
) -> float:
    """Seconds from ``started`` (just before the process was spawned) to ready."""
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.005)
    raise TimeoutError("server never turned ready")


def wrk(
    port: int,
    path: str,
    body_file: Path,
    script: Path,
    concurrency: int,
    duration: float,
    server_pid: int | None = None,
) -> dict[str, float]:
    command = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    cpu_before = tree_cpu_s(server_pid) if server_pid else 0.0
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_used = tree_cpu_s(server_pid) - cpu_before if server_pid else 0.0
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "cpu_us": cpu_used / max(1, raw["requests"]) * 1e6,
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50"] / 1000,
        "p90_ms": raw["p90"] / 1000,
        "p99_ms": raw["p99"] / 1000,
        "errors": raw["errors"] + raw["non2xx"],
    }


def measure(target: Target, duration: float, scratch: Path) -> None:
    port = free_port()
    body_file = scratch / f"{abs(hash(target.label))}.json"
    body_file.write_bytes(target.body)
    script = scratch / f"{abs(hash(target.label))}.lua"
    script.write_text(WRK_SCRIPT.format(body=body_file))
    command = [arg.replace("{port}", str(port)) for arg in target.command]
    log = (scratch / f"{abs(hash(target.label))}.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *command], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        target.cold_start_s = wait_ready(port, process, started)
        time.sleep(1.0)
        target.idle_rss_mb = tree_rss_mb(process.pid)
        wrk(port, target.path, body_file, script, 16, min(3.0, duration))  # warm the path
        for concurrency in CONCURRENCY:
            target.rows[concurrency] = wrk(
                port, target.path, body_file, script, concurrency, duration, process.pid
            )
            row = target.rows[concurrency]
            print(
                f"  {target.label:<34} c={concurrency:<3} {row['rps']:>8.0f} req/s  "
                f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
                f"errors {row['errors']:.0f}  cpu {row['cpu_us']:.0f} µs/req",
                flush=True,
            )
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def train_model(store: Path) -> None:
    """The digits sample data set, a real training run, and one real example as the body."""
    data = store.parent / "digits-data"

    def run(*args: str) -> bytes:
        done = subprocess.run(
            [sys.executable, "-m", *args], cwd=ROOT, check=True, capture_output=True
        )
        return done.stdout

    run("training.data", "sample", str(data))
    run(
        "training", "--model", "digits", "--data", str(data), "--store", str(store), "--epochs", "3"
    )
    (store / "request.json").write_bytes(run("training.data", "request", str(data)))


def targets(store: Path, kserve_python: Path) -> list[Target]:
    version = store / "digits" / "1"
    v1_body = (store / "request.json").read_bytes()
    image = json.loads(v1_body)["instances"][0]
    flat = [pixel for row in image for col in row for pixel in col]
    v2_body = json.dumps(
        {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": flat}]}
    ).encode()
    ours = [
        sys.executable,
        "-m",
        "serving",
        "--model-uri",
        str(version),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--cache-dir",
        str(store / "cache"),
    ]
    v1, v2 = "/v1/models/digits:predict", "/v2/models/digits/infer"

    def serving_int8(*program: str) -> list[str]:
        """A baseline server's command, serving the same LiteRT int8 file as ours."""
        return [*program, "--port", "{port}", "--model-path", str(version / "model.int8.tflite")]

    return [
        Target(
            "HTTP ceiling (aiohttp, constant JSON)",
            [sys.executable, "-m", "bench.predictor.ceiling", "--port", "{port}"],
            v1,
            v1_body,
        ),
        Target(
            "minimal aiohttp predictor (LiteRT int8)",
            serving_int8(sys.executable, "-m", "bench.predictor.minimal_aiohttp"),
            v1,
            v1_body,
        ),
        Target(
            TRANSPORT_MINIMAL,
            serving_int8(sys.executable, "-m", "bench.predictor.transport_minimal"),
            v1,
            v1_body,
        ),
        Target(
            AIOHTTP_INT8,
            [*ours, "--http-server", "aiohttp", "--runtime", "tflite-int8"],
            v1,
            v1_body,
        ),
        Target(
            HTTPTOOLS_INT8,
            [*ours, "--http-server", "httptools", "--runtime", "tflite-int8"],
            v1,
            v1_body,
        ),
        Target(
            "fleetdeck LiteRT int8, V2 (aiohttp)", [*ours, "--runtime", "tflite-int8"], v2, v2_body
        ),
        Target("fleetdeck SavedModel, single", [*ours, "--runtime", "savedmodel"], v1, v1_body),
        Target(
            "fleetdeck SavedModel, batched",
            [*ours, "--runtime", "savedmodel", "--batch-timeout-ms", "5", "--max-batch-size", "64"],
            v1,
            v1_body,
        ),
        Target(
            "KServe ModelServer, LiteRT int8",
            serving_int8(str(kserve_python), "bench/predictor/kserve_server.py"),
            v1,
            v1_body,
        ),
    ]


def table(results: list[Target]) -> str:
    lines = [
        "| server | c | req/s | p50 ms | p90 ms | p99 ms | errors | server CPU µs/req "
        "| idle RSS MB | cold start s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in results:
        for c, row in t.rows.items():
            lines.append(
                f"| {t.label} | {c} | {row['rps']:.0f} | {row['p50_ms']:.2f} | "
                f"{row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']:.0f} | "
                f"{row['cpu_us']:.0f} | {t.idle_rss_mb:.0f} | {t.cold_start_s:.2f} |"
            )
    return "\n".join(lines)


def verdicts(results: list[Target]) -> str:
    by = {t.label: t for t in results}
    ceiling = by["HTTP ceiling (aiohttp, constant JSON)"].rows
    minimal = by["minimal aiohttp predictor (LiteRT int8)"].rows
    on_aiohttp, on_httptools = by[AIOHTTP_INT8], by[HTTPTOOLS_INT8]
    transport = by[TRANSPORT_MINIMAL]
    kserve = by["KServe ModelServer, LiteRT int8"].rows
    single = by["fleetdeck SavedModel, single"].rows
    batched = by["fleetdeck SavedModel, batched"].rows

    def by_rps(ours: Target, baseline: dict[int, dict[str, float]]) -> float:
        return ours.rows[16]["rps"] / baseline[16]["rps"]

    def by_cpu(ours: Target, baseline: dict[int, dict[str, float]]) -> float:
        # A saturated one-core server serves 1 / CPU-per-request: this ratio is what a busy
        # neighbour on a shared machine barely moves.
        return baseline[16]["cpu_us"] / ours.rows[16]["cpu_us"]

    checks = [
        ("aiohttp c=16 vs minimal aiohttp", by_rps(on_aiohttp, minimal), ">= 0.85"),
        ("aiohttp c=16 vs minimal aiohttp, by CPU/req", by_cpu(on_aiohttp, minimal), ">= 0.85"),
        # Ours, not issue 15's: the same minimal handler on our transport and on an aiohttp
        # Application. Parity says the gap above is the handlers' validation and metrics.
        (
            "our transport vs aiohttp Application, same handler, by CPU/req",
            by_cpu(transport, minimal),
            ">= 0.95",
        ),
        ("aiohttp c=16 vs KServe", by_rps(on_aiohttp, kserve), ">= 2.5"),
        ("aiohttp c=16 vs KServe, by CPU/req", by_cpu(on_aiohttp, kserve), ">= 2.5"),
        ("httptools c=16 vs constant-JSON ceiling", by_rps(on_httptools, ceiling), ">= 0.9"),
        ("httptools c=16 vs ceiling, by CPU/req", by_cpu(on_httptools, ceiling), ">= 0.9"),
        ("httptools c=16 vs KServe", by_rps(on_httptools, kserve), ">= 5"),
        ("httptools c=16 vs KServe, by CPU/req", by_cpu(on_httptools, kserve), ">= 5"),
        ("httptools c=16 p99 ms", on_httptools.rows[16]["p99_ms"], "< 3"),
        ("SavedModel batched vs single c=64 req/s", batched[64]["rps"] / single[64]["rps"], ">= 4"),
        (
            "SavedModel batched p99 / single p99 c=64",
            batched[64]["p99_ms"] / single[64]["p99_ms"],
            "< 1",
        ),
        ("aiohttp LiteRT cold start s", on_aiohttp.cold_start_s, "< 1"),
        ("httptools LiteRT cold start s", on_httptools.cold_start_s, "< 1"),
        ("aiohttp LiteRT idle RSS MB", on_aiohttp.idle_rss_mb, "< 100"),
        ("httptools LiteRT idle RSS MB", on_httptools.idle_rss_mb, "< 100"),
    ]
    lines = ["| measure | value | target | met |", "|---|---|---|---|"]
    for name, value, target in checks:
        op, bound = target.split()
        met = value >= float(bound) if op == ">=" else value < float(bound)
        lines.append(f"| {name} | {value:.2f} | {target} | {'yes' if met else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--write", action="store_true", help="record the tables in bench/README.md")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing: apt-get install -y wrk util-linux")
    kserve_python = ensure_kserve_venv()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
        scratch = Path(tmp)
        print("bench: training the digits model", flush=True)
        train_model(scratch / "store")
        results = targets(scratch / "store", kserve_python)
        for target in results:
            measure(target, args.duration, scratch)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    report = (
        f"### Predictor ({datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, {cpu}; "
        f"server on core {SERVER_CORE}, wrk on core {LOAD_CORE}, {args.duration:.0f} s per row)\n\n"
        f"{table(results)}\n\nTargets (ratios within this run):\n\n{verdicts(results)}\n"
    )
    print("\n" + report)
    if args.write:
        record("predictor", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
