"""Both images, built by scripts/build-images and run with buildah on this machine (no Docker
engine, no registry): the predictor image serves a model from the test HDFS, the training image
installs its code from HDFS at start, trains, and publishes a version the predictor image serves."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import requests

from serving.store import ModelStore
from tests.infra.hdfs_fixtures import DEFAULT_USER, HdfsCluster
from tests.infra.images import PREDICTOR_IMAGE, TRAINING_IMAGE, Container
from tests.infra.packaging import build_wheel
from tests.integration.images.conftest import RunImage
from tests.support.models import TinyModel, reference_outputs
from training.data import load_dataset, write_sample

LISTENING = re.compile(r"listening on http://[^:]+:(\d+)")
MODEL_CACHE = "/var/cache/fleetdeck/models"  # FLEETDECK_CACHE_DIR in serving/Dockerfile
PREDICTOR_UID = 10001
# The first test builds both images (scripts/build-images) on a cold cache: TensorFlow's layer
# alone takes minutes on this machine's 2 cores. With a warm cache each test takes well under one.
COLD_BUILD_TIMEOUT = 2400


class ImagePredictor:
    """The predictor image's default command, running in ``container`` on a free port."""

    def __init__(self, container: Container, log: Path, model_uri: str) -> None:
        self.container = container
        container.start(
            log,
            env={
                "FLEETDECK_MODEL_URI": model_uri,
                "FLEETDECK_HOST": "127.0.0.1",
                "FLEETDECK_PORT": "0",
                "FLEETDECK_DRAIN_SECONDS": "2",
                "HADOOP_USER_NAME": DEFAULT_USER,
            },
        )
        self.url = f"http://127.0.0.1:{self._port()}"

    def _port(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.container.log())
            if found:
                return int(found.group(1))
            if self.container.process is not None and self.container.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"the predictor image never listened:\n{self.container.log()}")

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=30)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=30)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/v2/health/ready").status_code == 200:
                return
            if self.container.process is not None and self.container.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the predictor image never turned ready:\n{self.container.log()}")

    def predict_v1(self, images: npt.NDArray[Any]) -> npt.NDArray[Any]:
        rows = []
        for image in images:
            answer = self.post("/v1/models/digits:predict", {"instances": [image.tolist()]})
            assert answer.status_code == 200, answer.text
            rows.append(answer.json()["predictions"][0])
        return np.array(rows)

    def predict_v2(self, image: npt.NDArray[Any]) -> npt.NDArray[Any]:
        answer = self.post(
            "/v2/models/digits/infer",
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": [1, *image.shape],
                        "datatype": "FP32",
                        "data": image.ravel().tolist(),
                    }
                ]
            },
        )
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        return np.array(output["data"]).reshape(1, -1)


def expected_outputs(
    store_uri: str, version: int, images: npt.NDArray[Any], scratch: Path
) -> npt.NDArray[Any]:
    """What the published int8 model computes, run here outside the image."""
    ModelStore(store_uri).fetch("digits", version, scratch)
    return np.asarray(
        reference_outputs(TinyModel(scratch, "digits", version, images), "tflite-int8", images)
    )


def uid_of(pid: int) -> int:
    status = (Path("/proc") / str(pid) / "status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


def serve_and_check(
    run_image: RunImage,
    log: Path,
    store_uri: str,
    version: int,
    images: npt.NDArray[Any],
    expected: npt.NDArray[Any],
) -> None:
    """The predictor image on ``store_uri``'s digits model: live at once, ready after warm-up,
    V1 and V2 answers equal to ``expected``, non-root, the model only in its cache, and a
    SIGTERM that drains (not ready, still answering) and exits 0."""
    container = run_image(PREDICTOR_IMAGE)
    assert container.config["User"] == str(PREDICTOR_UID)
    assert container.files("*.tflite") == []
    assert container.files("manifest.json") == []
    assert container.files("tensorflow*") == []  # LiteRT serving needs no TensorFlow

    predictor = ImagePredictor(container, log, f"{store_uri}/digits")
    live = predictor.get("/v2/health/live")  # liveness never waits on the model
    assert live.status_code == 200
    assert live.json() == {"live": True}
    predictor.wait_ready()
    assert f"fetching {store_uri}/digits/{version}" in container.log()
    assert uid_of(container.main_pid("serving")) == PREDICTOR_UID

    np.testing.assert_allclose(predictor.predict_v1(images), expected, atol=1e-6)
    np.testing.assert_allclose(predictor.predict_v2(images[0]), expected[:1], atol=1e-6)
    model_files = container.files("*.tflite")
    assert model_files
    assert all(f.startswith(f"{MODEL_CACHE}/digits/{version}/") for f in model_files)

    container.terminate("serving")
    draining = False
    while container.process is not None and container.process.poll() is None:
        try:
            if predictor.get("/v2/health/ready").status_code == 503:
                draining = draining or predictor.get("/v2/health/live").status_code == 200
        except requests.ConnectionError:
            break  # closed after the drain
        time.sleep(0.05)
    assert container.wait(60) == 0, container.log()
    assert draining, "the predictor never answered not-ready while it drained"


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_predictor_image_serves_a_model_from_hdfs(
    run_image: RunImage, hdfs_root: str, tmp_path: Path
) -> None:
    from training.fit import TrainingSpec, train
    from training.logs import TrainingLog

    data = tmp_path / "digits-data"
    write_sample(str(data))
    spec = TrainingSpec(
        model="digits",
        data=str(data),
        store=hdfs_root,
        epochs=1,
        params={"width": 8},
        run_id="images",
    )
    version = train(spec, TrainingLog(io.StringIO())).manifest.version
    images = load_dataset(str(data)).images[:4]
    expected = expected_outputs(hdfs_root, version, images, tmp_path / "reference")

    serve_and_check(run_image, tmp_path / "predictor.log", hdfs_root, version, images, expected)


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_training_image_installs_its_code_from_hdfs_trains_and_publishes(
    run_image: RunImage, hdfs_root: str, hdfs_cluster: HdfsCluster, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path)
    hdfs_cluster.client().upload(f"{hdfs_cluster.path(hdfs_root)}/code/{wheel.name}", str(wheel))
    data = f"{hdfs_root}/data/digits"
    write_sample(data)
    store = f"{hdfs_root}/store"

    trainer = run_image(TRAINING_IMAGE)
    assert trainer.config["User"] == "10002"
    assert trainer.files("fleetdeck-*.dist-info") == []  # the code arrives at start
    trainer.start(
        tmp_path / "training.log",
        env={
            "FLEETDECK_TRAINING_CODE": f"{hdfs_root}/code/{wheel.name}",
            "FLEETDECK_MODEL": "digits",
            "FLEETDECK_DATA": data,
            "FLEETDECK_STORE": store,
            "FLEETDECK_EPOCHS": "1",
            "HADOOP_USER_NAME": DEFAULT_USER,
        },
    )
    assert trainer.wait(600) == 0, trainer.log()
    log = trainer.log()
    assert f"fetching {hdfs_root}/code/{wheel.name}" in log
    assert "installing training code" in log
    assert f"published digits version 1 to {store}" in log
    assert ModelStore(store).versions("digits") == [1]

    images = load_dataset(data).images[:4]
    expected = expected_outputs(store, 1, images, tmp_path / "reference")
    serve_and_check(run_image, tmp_path / "predictor.log", store, 1, images, expected)
