"""A deployment on the local runtime and predictions through its gateway, as a client fleet
sends them: a few threads until stopped, each failure kept (a status other than 200, or no
answer)."""

from __future__ import annotations

import threading
from typing import Any

import requests

from console.backends.local import LocalBackend
from console.model import DeploymentState, DeployRequest
from tests.infra.k8s_fixtures import poll_until


def deploy_available(backend: LocalBackend, name: str, replicas: int = 1) -> None:
    """``name`` on digits version 1 in ``default``, once it is Available."""
    result = backend.deploy(DeployRequest(name, "digits", 1, "default", replicas))
    assert result.ok, result.message
    poll_until(
        f"{name} available",
        lambda: (
            (row := backend.deployment("default", name)) is not None
            and row.state is DeploymentState.AVAILABLE
        ),
        timeout=120,
    )


def predict(backend: LocalBackend, name: str, images: Any, session: Any = requests) -> Any:
    return session.post(
        f"{backend.gateway_url()}/models/{name}/v1/models/{name}:predict",
        json={"instances": images.tolist()},
        timeout=30,
    )


class LoadGenerator:
    """``threads`` threads sending two images at a time; each waits ``pause`` seconds between
    requests (0: as fast as answers come)."""

    def __init__(
        self,
        backend: LocalBackend,
        name: str,
        images: Any,
        threads: int = 3,
        *,
        pause: float = 0.0,
    ) -> None:
        self.backend, self.name, self.images = backend, name, images[:2]
        self.pause = pause
        self.stop = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    answer = predict(self.backend, self.name, self.images, session)
                    failure = (
                        "" if answer.status_code == 200 else f"{answer.status_code} {answer.text}"
                    )
                except requests.RequestException as exc:
                    failure = str(exc)
                with self._lock:
                    self.sent += 1
                    if failure:
                        self.failures.append(failure)
                if self.pause:
                    self.stop.wait(self.pause)
