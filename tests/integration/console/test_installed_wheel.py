"""Installed from a wheel, away from any checkout, the console still finds the bundled
profiles and the Kubernetes manifest templates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.infra.packaging import build_wheel, isolated_venv

pytestmark = pytest.mark.integration

REPORT = """
import json
from console.profile import list_profiles, load_profile
from console.backends.kubernetes.templates import templates_dir
print(json.dumps({
    "bundled": sorted(p.name for p in list_profiles() if p.origin == "bundled"),
    "kwok_backend": load_profile("kwok").backend,
    "templates": str(templates_dir()),
}))
"""


def test_a_wheel_install_ships_the_bundled_profiles_and_manifest_templates(
    tmp_path: Path,
) -> None:
    venv = isolated_venv(tmp_path)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "-q", str(build_wheel(tmp_path))],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = subprocess.run(
        [python, "-c", REPORT],
        cwd=elsewhere,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    assert {"local", "kwok"} <= set(found["bundled"])
    assert found["kwok_backend"] == "kubernetes"
    assert found["templates"].startswith(str(venv))
    assert (Path(found["templates"]) / "deployment.yaml").is_file()
