"""A session: who acts (the kube context's user, else the OS user), where, and one backend
per cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from console.audit import current_user
from console.core.session import Session, SessionRequest, is_read_only, session_on, user_of
from console.profile import KubernetesSettings, load_profile
from tests.unit.console.core.fake_backend import RecordingBackend, as_backend

KUBECONFIG = """
current-context: admin
contexts:
- name: admin
  context: {cluster: test, user: kwok-admin}
- name: viewer
  context: {cluster: test, user: kwok-viewer}
"""


def test_the_namespaces_asked_for() -> None:
    assert SessionRequest().namespaces() is None  # the profile's
    assert SessionRequest(namespace="models").namespaces() == ("models",)
    assert SessionRequest(all_namespaces=True).namespaces() == ()


def test_a_read_only_profile_stays_read_only_whatever_the_flag() -> None:
    profile = dataclasses.replace(load_profile("local"), read_only=True)
    assert is_read_only(profile, SessionRequest(read_only=False))
    assert is_read_only(load_profile("local"), SessionRequest(read_only=True))
    assert not is_read_only(load_profile("local"), SessionRequest())


def test_the_user_is_the_kube_contexts_user_and_the_flag_chooses_the_context(
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = KubernetesSettings(kubeconfig=kubeconfig, context="admin", namespaces=("models",))
    profile = dataclasses.replace(load_profile("local"), kubernetes=settings)
    assert user_of(profile, SessionRequest()) == "kwok-admin"
    assert user_of(profile, SessionRequest(context="viewer")) == "kwok-viewer"
    assert user_of(load_profile("local"), SessionRequest()) == current_user()


def test_one_cluster_is_the_sessions_backend_and_closing_closes_it() -> None:
    fake = RecordingBackend()
    backend = as_backend(fake)
    session = session_on(load_profile("local"), backend, user="alice")
    assert session.backend is backend
    assert session.guard.user == "alice"
    assert session.audit.profile == "local"
    with session:
        pass
    assert fake.sent == ["closed"]


def test_a_session_of_several_clusters_asks_which_one() -> None:
    one, two = as_backend(RecordingBackend()), as_backend(RecordingBackend())
    session = Session(load_profile("local"), "alice", False, None, {"east": one, "west": two})
    with pytest.raises(ValueError, match="holds 2 clusters"):
        _ = session.backend
    assert list(session.backends) == ["east", "west"]
