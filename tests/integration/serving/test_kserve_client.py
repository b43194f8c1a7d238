"""KServe's own REST client (kserve 0.21) checks liveness and readiness and predicts, on both
transports: what a KServe user's code does first must work against this predictor."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.fixtures import StartPredictor
from tests.support.kserve_venv import kserve_python
from tests.support.models import TinyModel, reference_outputs

PROBE = Path(__file__).resolve().parents[2] / "support" / "kserve_client_probe.py"


@pytest.mark.parametrize("transport", ["aiohttp", "httptools"])
def test_kserves_rest_client_sees_a_live_ready_model_and_gets_its_predictions(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path, transport: str
) -> None:
    python = kserve_python()
    predictor = start_predictor(
        "--http-server", transport, "--model-uri", str(tiny_model.store_root / tiny_model.name)
    )
    predictor.wait_ready()
    images = tiny_model.images[:4]
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"instances": images.tolist()}))

    done = subprocess.run(
        [str(python), str(PROBE), predictor.url, tiny_model.name, str(request)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)

    assert seen["v1_live"] is True  # GET / answers {"status": "alive"}
    assert seen["v1_model_ready"] is True
    assert seen["v2_live"] is True
    assert seen["v2_ready"] is True
    assert seen["v2_model_ready"] is True
    expected = reference_outputs(tiny_model, "tflite-int8", images)
    np.testing.assert_allclose(np.array(seen["v1_predictions"]), expected, atol=1e-6)
    assert seen["v2_model_name"] == tiny_model.name
    assert seen["v2_shape"] == list(expected.shape)
    np.testing.assert_allclose(
        np.array(seen["v2_data"]).reshape(expected.shape), expected, atol=1e-6
    )
