"""A real Prometheus server for tests: Debian's ``prometheus`` package, started on loopback.

``scripts/test`` installs it (``apt-get install prometheus``) where apt is available; on a
developer machine without it the tests that need it skip (in CI they fail), as for the other
infrastructure. ``FLEETDECK_PROMETHEUS`` may point at another binary.

The server scrapes the targets it is given with the labels a relabelled ``kubernetes_sd``
pod job would attach (``namespace``, ``app_kubernetes_io_name``, ``pod``), so the console's
Prometheus source reads it exactly as it reads a cluster's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.infra.require import missing_infra

INSTALL_HINT = "apt-get install prometheus (Debian/Ubuntu), or set FLEETDECK_PROMETHEUS"


@dataclass(frozen=True)
class ScrapeTarget:
    namespace: str
    deployment: str
    pod: str
    address: str  # host:port of the predictor


def prometheus_binary() -> Path | None:
    configured = os.environ.get("FLEETDECK_PROMETHEUS")
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    found = shutil.which("prometheus")
    return Path(found) if found else None


def require_prometheus() -> Path:
    binary = prometheus_binary()
    if binary is None:
        missing_infra(f"prometheus server not found ({INSTALL_HINT})")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def target_group(target: ScrapeTarget) -> dict[str, Any]:
    """One target with the labels a relabelled ``kubernetes_sd`` pod job attaches."""
    return {
        "targets": [target.address],
        "labels": {
            "namespace": target.namespace,
            "app_kubernetes_io_name": target.deployment,
            "pod": target.pod,
        },
    }


def scrape_config(
    targets: Sequence[ScrapeTarget], interval_s: float, *, files: Sequence[Path] = ()
) -> dict[str, Any]:
    """The predictors' scrape job: ``targets`` as static targets, or the ``files`` Prometheus
    watches for them (file service discovery)."""
    interval = f"{round(interval_s * 1000)}ms"
    job: dict[str, Any] = {
        "job_name": "fleetdeck-predictors",
        "scrape_interval": interval,
        "scrape_timeout": interval,
    }
    if files:
        job["file_sd_configs"] = [{"files": [str(f) for f in files], "refresh_interval": "5s"}]
    else:
        job["static_configs"] = [target_group(t) for t in targets]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [job],
    }


class PrometheusServer:
    """One Prometheus process with a generated config; ``stop`` ends it and its data."""

    def __init__(
        self,
        folder: Path,
        targets: Sequence[ScrapeTarget],
        *,
        interval_s: float = 1.0,
        binary: Path | None = None,
        files: Sequence[Path] = (),
    ) -> None:
        self.binary = binary or require_prometheus()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "prometheus.yml"
        config = scrape_config(targets, interval_s, files=files)
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus did not become ready:\n{self.log()}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = urllib.parse.urlencode({"query": promql}).encode()
        with urllib.request.urlopen(self.url + "/api/v1/query", data=data, timeout=10) as answer:
            body = json.loads(answer.read())
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> int:
        """How many targets answered the last scrape."""
        return sum(int(float(item["value"][1])) for item in self.query("up == 1"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
