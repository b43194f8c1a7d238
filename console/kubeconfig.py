"""The kubeconfig a profile reads and the contexts in it: for ``:ctx`` in the deck and for
completing ``--context`` (start-up sensitive: PyYAML is imported only when a file is read)."""

from __future__ import annotations

import os
from pathlib import Path

from console.profile import Profile


def kubeconfig_path(profile: Profile) -> Path:
    """The kubeconfig the profile reads: its own, else ``$KUBECONFIG``'s first, else ~/.kube."""
    settings = profile.kubernetes
    if settings is not None and settings.kubeconfig is not None:
        return settings.kubeconfig
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def kubeconfig_contexts(profile: Profile) -> list[str]:
    """The contexts of the profile's kubeconfig, in its order (blocking: reads a file).
    Raises OSError or ValueError (YAML) for a kubeconfig that cannot be read."""
    import yaml

    path = kubeconfig_path(profile)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a kubeconfig")
    contexts = config.get("contexts") or []
    return [str(c["name"]) for c in contexts if isinstance(c, dict) and c.get("name")]
