"""Comparing what two front-ends did: audit records and results with what differs by nature
(times, the random part of job names) taken out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# A job's name ends in a random suffix (train-digits-1a2b3, score-digits-4c5d6-0).
_JOB = re.compile(r"\b((?:train|score|sweep)-[a-z0-9-]*?)-[0-9a-f]{5}(-\d+)?\b")
# The local runtime numbers its jobs (train-digits-3).
_LOCAL_JOB = re.compile(r"\b((?:train|score)-[a-z0-9]+)-\d+\b")
# When something happened (a restart's restartedAt).
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")


def without_ids(value: Any) -> Any:
    """``value`` (JSON) with job names' random suffixes replaced by ``*``, times by
    ``<time>``."""
    if isinstance(value, str):
        return _TIME.sub("<time>", _LOCAL_JOB.sub(r"\1-*", _JOB.sub(r"\1-*\2", value)))
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    if isinstance(value, Mapping):
        return {k: without_ids(v) for k, v in value.items()}
    return value


def comparable_audit(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Audit lines (``AuditEntry.to_json``) without their times and random ids."""
    return [without_ids({k: v for k, v in entry.items() if k != "time"}) for entry in entries]


def write_kubernetes_profile(
    config_home: Path, name: str, *, kubeconfig: Path, namespace: str, store: str
) -> None:
    """A user profile for the test cluster: one namespace, the given store, GPU jobs placed
    on the fake GPU nodes."""
    profiles = config_home / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / f"{name}.toml").write_text(
        'backend = "kubernetes"\n'
        f'[kubernetes]\nkubeconfig = "{kubeconfig}"\ncontext = "kwok-admin"\n'
        f'namespaces = ["{namespace}"]\n'
        f'[store]\nroot = "{store}"\n'
        "[predictor]\nreplicas = 1\n"
        '[route]\nkind = "Ingress"\nhost = "models.test"\n'
        '[training]\ngpus = 1\nnode_selector = { accelerator = "nvidia-h100" }\n'
        'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", '
        'effect = "NoSchedule" }]\n'
    )
