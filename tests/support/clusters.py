"""The CLI on a profile naming several of the test clusters, and a cluster moved elsewhere."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.infra.k8s_fixtures import K8sCluster
from tests.support.cli import Fleetdeck


@dataclass(frozen=True)
class InProfile:
    """One ``[[clusters]]`` entry, on its kubeconfig's ``kwok-admin`` context by default."""

    name: str
    kubeconfig: Path
    namespace: str
    read_only: bool = False
    metrics: str = ""  # the lines of its [clusters.metrics] table ("": the profile's)
    context: str = "kwok-admin"  # kwok-oncall acts in model namespaces, kwok-viewer only reads


def clusters_fleetdeck(
    home: Path, clusters: Sequence[InProfile], *, store: str = "/nonexistent", tables: str = ""
) -> Fleetdeck:
    """The CLI on a profile ``fleet`` naming ``clusters``, its config and state under ``home``
    (``tables``: more of the profile, such as its ``[slo]``)."""
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    text = f'backend = "kubernetes"\n[store]\nroot = "{store}"\n{tables}'
    for c in clusters:
        text += (
            f'[[clusters]]\nname = "{c.name}"\ncontext = "{c.context}"\n'
            f'kubeconfig = "{c.kubeconfig}"\nnamespaces = ["{c.namespace}"]\n'
            f"read_only = {str(c.read_only).lower()}\n"
        )
        if c.metrics:
            text += f"[clusters.metrics]\n{c.metrics}"
    (profiles / "fleet.toml").write_text(text)
    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": "fleet",
        }
    )


def kubeconfig_moved(cluster: K8sCluster, path: Path, server: str) -> Path:
    """``cluster``'s kubeconfig (contexts, users, credentials) with every server at ``server``,
    written to ``path``: a cluster that refuses (``https://127.0.0.1:1``) or never answers."""
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        entry["cluster"]["server"] = server
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


REFUSED = "https://127.0.0.1:1"  # nothing listens there: every connection is refused


def merged_kubeconfig(path: Path, clusters: dict[str, K8sCluster]) -> Path:
    """One kubeconfig holding each cluster's ``kwok-admin`` context under the dict's key (its
    cluster and user entries renamed after it), written to ``path``: ``--context a,b``."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                              "users": [], "contexts": []}  # fmt: skip
    for name, cluster in clusters.items():
        config = yaml.safe_load(cluster.kubeconfig.read_text())
        context = next(c for c in config["contexts"] if c["name"] == "kwok-admin")["context"]
        entry = next(c for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u for u in config["users"] if u["name"] == context["user"])
        merged["clusters"].append({"name": name, "cluster": entry["cluster"]})
        merged["users"].append({"name": name, "user": user["user"]})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    merged["current-context"] = next(iter(clusters))
    path.write_text(yaml.safe_dump(merged))
    path.chmod(0o600)
    return path


def contexts_fleetdeck(home: Path, kubeconfig: Path, namespaces: Sequence[str]) -> Fleetdeck:
    """The CLI on a profile ``one`` of one cluster (a ``[kubernetes]`` table) reading
    ``namespaces`` through ``kubeconfig``: ``--context a,b`` widens it to its contexts."""
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    spaces = ", ".join(f'"{n}"' for n in namespaces)
    (profiles / "one.toml").write_text(
        f'backend = "kubernetes"\n[kubernetes]\nkubeconfig = "{kubeconfig}"\n'
        f'context = "a"\nnamespaces = [{spaces}]\n[store]\nroot = "/nonexistent"\n'
    )
    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": "one",
        }
    )


@contextlib.contextmanager
def reading_profiles_of(fleetdeck: Fleetdeck) -> Iterator[None]:
    """In this process, profiles and state are read where ``fleetdeck``'s are (its XDG
    folders), as the deck run in-process under a pilot reads them; restored afterwards."""
    names = ("XDG_CONFIG_HOME", "XDG_STATE_HOME")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: fleetdeck.env[name] for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
