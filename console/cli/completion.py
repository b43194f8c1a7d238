"""Shell completion (argcomplete): the scripts ``fleetdeck completion bash|zsh|fish`` prints,
and the completers of profile names, contexts, namespaces, deployments, models and versions.

The shell runs ``fleetdeck`` at each TAB, so every completer answers from what is at hand and
quickly: profile files, the kubeconfig, the profile's namespaces and store, and for deployment
names one list request with a short timeout (Kubernetes) or the running local agent's snapshot
(it is never started for a TAB). A completer that cannot answer offers nothing; it never
prints an error into the user's command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from console.profile import Profile, list_profiles, load_profile

LIST_TIMEOUT = 1.0  # seconds a deployment-name completion waits on the cluster


def print_script(shell: str) -> int:
    """The completion script for ``shell``; sourcing it completes ``fleetdeck``."""
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["fleetdeck"], shell=shell))
    return 0


def quietly(complete: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """A completer that offers nothing instead of failing."""

    @wraps(complete)
    def guarded(**kwargs: Any) -> list[str]:
        try:
            return complete(**kwargs)
        except Exception:
            return []

    return guarded


def _profile(parsed_args: argparse.Namespace) -> Profile:
    return load_profile(getattr(parsed_args, "profile", None))


@quietly
def profiles(**_: Any) -> list[str]:
    return [p.name for p in list_profiles()]


@quietly
def contexts(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    from console.kubeconfig import kubeconfig_contexts

    return kubeconfig_contexts(_profile(parsed_args))


@quietly
def namespaces(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    profile = _profile(parsed_args)
    settings = profile.kubernetes
    return list(settings.namespaces) if settings is not None else ["default"]


@quietly
def models(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    from serving.store import ModelStore

    return ModelStore(_profile(parsed_args).store.root).models()


@quietly
def versions(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The versions of ``--model`` (deploy, score), else of the named deployments' model."""
    from serving.store import ModelStore

    profile = _profile(parsed_args)
    model = getattr(parsed_args, "model", None)
    if model is None:
        names = set(getattr(parsed_args, "names", None) or ())
        found = {m for n, m in _deployments(profile, parsed_args) if n in names}
        if len(found) != 1:
            return []
        model = found.pop()
    return [str(v) for v in ModelStore(profile.store.root).versions(model)]


@quietly
def deployments(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    return sorted({name for name, _ in _deployments(_profile(parsed_args), parsed_args)})


@quietly
def log_targets(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    names = {name for name, _ in _deployments(_profile(parsed_args), parsed_args)}
    return sorted(f"deploy/{name}" for name in names)


def _deployments(profile: Profile, parsed_args: argparse.Namespace) -> Iterable[tuple[str, str]]:
    """(name, model) of the deployments in the namespaces the command would read."""
    from console.backends import quick_deployments

    found = quick_deployments(
        profile,
        context=getattr(parsed_args, "context", None),
        namespace=getattr(parsed_args, "namespace", None),
        timeout=LIST_TIMEOUT,
    )
    return [(d.name, d.model) for d in found]
