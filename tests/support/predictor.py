"""A real predictor process (``python -m serving``) for tests: start, wait, call, stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on http://[^:]+:(\d+)")


class PredictorProcess:
    """``http_server`` picks the transport (``--http-server``); None: the predictor's default."""

    def __init__(
        self,
        log_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        http_server: str | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", "0", *args]
        if http_server is not None:
            command += ["--http-server", http_server]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.port = self._wait_for_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise RuntimeError(f"predictor exited early:\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"predictor did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=30)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.http.post(self.url + path, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"predictor exited:\n{self.log()}")
            if self.get("/v2/health/ready").status_code == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"predictor never turned ready:\n{self.log()}")

    def wait_until(self, predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{what} not reached:\n{self.log()}")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Tear down quickly: a second SIGTERM cuts the drain window short (the predictor's
        documented behaviour), so a test does not wait out ``--drain-seconds``. Tests of the
        drain itself use ``terminate`` and ``wait``."""
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.2)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.http.close()
        self._log.close()
