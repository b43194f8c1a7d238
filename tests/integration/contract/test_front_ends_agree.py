"""The CLI and the deck are two doors to the same rooms: every mutation, sent once through
``fleetdeck`` (a real process) and once the way the deck sends it (``console.core.actions``
with the deck's own context, on a session opened as the deck opens it), on the local runtime
and on the test cluster, leaves the same audit lines, gives the same results, and is refused
with the same words for a read-only profile and for a viewer."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.audit import read_audit
from console.core import actions
from console.core.guard import Refusal
from console.core.session import Session, SessionRequest, open_session
from console.model import (
    AutoscaleRequest,
    DeploymentState,
    DeployRequest,
    ModelDeployment,
    ScoringRequest,
    TrainingRequest,
)
from console.profile import load_profile
from console.tui.context import DeckContext
from console.views.format import to_json
from serving.store import ModelStore
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import run_fleetdeck
from tests.support.front_ends import comparable_audit, without_ids, write_kubernetes_profile
from tests.support.versions import describe, make_version

NAME = "digits"


@dataclass(frozen=True)
class Place:
    """Where both front-ends act: the profile (in a temporary XDG home both share), the
    namespace, and what training and scoring read."""

    profile: str
    namespace: str
    kubernetes: bool
    train_data: str
    score_input: str


@pytest.fixture(params=["local", "kubernetes"])
def place(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Place]:
    from tests.integration.local.fixtures import (
        DigitsStore,
        stop_every_agent,
        use_temporary_xdg,
        write_local_profile,
    )

    use_temporary_xdg(tmp_path / "home", monkeypatch)
    if request.param == "local":
        store: DigitsStore = request.getfixturevalue("digits_store")
        profile = write_local_profile(store.root)
        try:
            yield Place("local", "contract", False, str(store.data), str(tmp_path / "photos"))
        finally:
            stop_every_agent(profile)
        return
    cluster: K8sCluster = request.getfixturevalue("k8s_cluster")
    namespace: str = request.getfixturevalue("k8s_namespace")
    hdfs_root: str = request.getfixturevalue("hdfs_root")
    source = make_version(tmp_path / "version")
    for _ in range(2):
        ModelStore(hdfs_root).publish("digits", source, describe)
    write_kubernetes_profile(
        Path(os.environ["XDG_CONFIG_HOME"]),
        "test",
        kubeconfig=cluster.kubeconfig,
        namespace=namespace,
        store=hdfs_root,
    )
    monkeypatch.setenv("FLEETDECK_PROFILE", "test")
    yield Place("test", namespace, True, "hdfs://nn:9870/digits", "hdfs://nn:9870/photos")


# -- the deck's door -----------------------------------------------------------------------------
@dataclass
class Deck:
    """A session opened as ``fleetdeck`` with no subcommand opens it, and the deck's context
    over it: what the deck's screens and dialogs hand to ``console.core.actions``."""

    session: Session
    context: DeckContext

    @classmethod
    def open(
        cls, place: Place, *, read_only: bool = False, kube_context: str | None = None
    ) -> Deck:
        profile = load_profile(place.profile)
        request = SessionRequest(
            context=kube_context, namespace=place.namespace, read_only=read_only
        )
        session = open_session(profile, request)
        deck = DeckContext(
            session.backend,
            profile,
            read_only=session.read_only,
            context=session.context,
            user=session.user,
        )
        return cls(session, deck)

    def send(self, request: actions.Request) -> Any:
        """What the deck shows: the results, or the refusal's words."""
        try:
            outcome = actions.perform(self.context, request)
        except (Refusal, actions.Unsupported) as exc:
            return {"error": str(exc)}
        return without_ids(to_json(list(outcome.results)))


def through_cli(place: Place, *args: str, read_only: bool = False, kube_context: str = "") -> Any:
    """What ``fleetdeck`` shows: its JSON results, or its error line's words."""
    flags = ["-n", place.namespace]
    flags += ["--readonly"] if read_only else []
    flags += ["--context", kube_context] if kube_context else []
    done = run_fleetdeck(*flags, *args, "--json")
    if done.stdout.strip():
        return without_ids(json.loads(done.stdout))
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("fleetdeck: "), done.stderr
    return {"error": line.removeprefix("fleetdeck: ")}


# -- every mutation, as each door takes it ------------------------------------------------------
@dataclass(frozen=True)
class Step:
    action: str
    cli: Callable[[Place, str], list[str]]  # the job to cancel is the last argument
    request: Callable[[Place, str], actions.Request]
    settled: Callable[[ModelDeployment | None], bool] | None = None


def _on(spec: actions.ActionSpec) -> Callable[[Place, str], actions.Request]:
    return lambda place, job: actions.OnTargets(spec, ((place.namespace, NAME),))


def _state(state: DeploymentState, **fields: object) -> Callable[[ModelDeployment | None], bool]:
    def reached(row: ModelDeployment | None) -> bool:
        if row is None or row.state is not state:
            return False
        return all(getattr(row, key) == value for key, value in fields.items())

    return reached


AVAILABLE = DeploymentState.AVAILABLE
STEPS = (
    Step(
        "deploy",
        lambda p, j: ["deploy", NAME, "--model", "digits", "--version", "1", "--replicas", "1"],
        lambda p, j: actions.Deploy(DeployRequest(NAME, "digits", 1, p.namespace, 1)),
        _state(AVAILABLE, version="1"),
    ),
    Step(
        "rollout",
        lambda p, j: ["rollout", NAME, "--version", "2"],
        _on(actions.ActionSpec("rollout", version=2)),
        _state(AVAILABLE, version="2"),
    ),
    Step(
        "rollback",
        lambda p, j: ["rollback", NAME],
        _on(actions.ActionSpec("rollback")),
        _state(AVAILABLE, version="1"),
    ),
    Step(
        "restart",
        lambda p, j: ["restart", NAME],
        _on(actions.ActionSpec("restart")),
        _state(AVAILABLE),
    ),
    Step(
        "pause",
        lambda p, j: ["pause", NAME],
        _on(actions.ActionSpec("pause")),
        _state(DeploymentState.PAUSED),
    ),
    Step(
        "resume",
        lambda p, j: ["resume", NAME],
        _on(actions.ActionSpec("resume")),
        _state(AVAILABLE),
    ),
    Step(
        "scale",
        lambda p, j: ["scale", NAME, "--replicas", "2"],
        _on(actions.ActionSpec("scale", replicas=2)),
        _state(AVAILABLE, desired=2, ready=2),
    ),
    Step(
        "autoscale",
        lambda p, j: ["autoscale", NAME, "--min", "1", "--max", "3", "--cpu", "70"],
        lambda p, j: actions.Autoscale(p.namespace, AutoscaleRequest(NAME, 1, 3, cpu_percent=70)),
    ),
    Step(
        "delete",
        lambda p, j: ["delete", NAME],
        _on(actions.ActionSpec("delete")),
        lambda row: row is None,
    ),
    Step(
        "train",
        lambda p, j: ["train", "--model", "digits", "--data", p.train_data, "--epochs", "50"],
        lambda p, j: actions.Train(TrainingRequest("digits", p.train_data, p.namespace, None, 50)),
    ),
    Step(
        "score",
        lambda p, j: ["score", "--model", "digits", "--version", "1", "--input", p.score_input],
        lambda p, j: actions.Score(ScoringRequest("digits", 1, p.score_input, p.namespace)),
    ),
    Step(
        "cancel",
        lambda p, j: ["cancel", j],
        lambda p, j: actions.Cancel(p.namespace, (j,)),
    ),
)


def perform_every_step(
    place: Place, send: Callable[[Step, str], tuple[Any, str]], reader: Deck
) -> list[Any]:
    """Each step in order, waiting for what it changed; what each door showed."""
    shown = []
    job = ""
    for step in STEPS:
        result, launched = send(step, job)
        job = launched or job
        shown.append((step.action, result))
        if step.settled is not None:
            wait_until_settled(step, place, reader)
    return shown


def wait_until_settled(step: Step, place: Place, reader: Deck) -> None:
    settled = step.settled
    assert settled is not None
    backend = reader.session.backend
    poll_until(
        f"{step.action} settled",
        lambda: settled(backend.deployment(place.namespace, NAME)) or None,
        timeout=180,
    )


def test_every_mutation_leaves_the_same_audit_lines_and_results_from_both_front_ends(
    place: Place,
) -> None:
    reader = Deck.open(place)
    try:

        def cli(step: Step, job: str) -> tuple[Any, str]:
            done = run_fleetdeck("-n", place.namespace, *step.cli(place, job), "--json")
            if not done.stdout.strip():
                error = done.stderr.strip().splitlines()[-1]
                return {"error": error.removeprefix("fleetdeck: ")}, ""
            results = json.loads(done.stdout)
            launched = results[0]["target"].split("/", 1)[1] if step.action == "train" else ""
            return without_ids(results), launched

        def deck(step: Step, job: str) -> tuple[Any, str]:
            try:
                outcome = actions.perform(reader.context, step.request(place, job))
            except (Refusal, actions.Unsupported) as exc:
                return {"error": str(exc)}, ""
            results = to_json(list(outcome.results))
            launched = results[0]["target"].split("/", 1)[1] if step.action == "train" else ""
            return without_ids(results), launched

        from_cli = perform_every_step(place, cli, reader)
        lines = len(read_audit())
        from_deck = perform_every_step(place, deck, reader)
    finally:
        reader.session.close()

    assert from_deck == from_cli
    by_action = dict(from_cli)
    assert all(r["ok"] for r in by_action["deploy"]), by_action["deploy"]
    assert all(r["ok"] for r in by_action["cancel"]), by_action["cancel"]
    if not place.kubernetes:  # the agent's autoscaler scales on req/s only (issue 20)
        (refused,) = by_action["autoscale"]
        assert not refused["ok"]
        assert "--cpu needs a Kubernetes profile" in refused["message"]
    entries: list[dict[str, Any]] = [e.to_json() for e in read_audit()]
    assert len(entries) == 2 * lines
    assert comparable_audit(entries[lines:]) == comparable_audit(entries[:lines])
    # One line per target, the parameters as values (the grid a mapping, not the typed text).
    assert all(len(e["targets"]) == 1 for e in entries)
    (train,) = [e for e in entries[:lines] if e["action"] == "train"]
    assert train["parameters"]["params"] == {}
    assert train["parameters"]["grid"] == {}
    assert train["parameters"]["epochs"] == 50


# Refused before anything is sent: the names only need to be valid.
PLACE_FOR_REFUSALS = Place("", "", False, "data", "inputs")


def test_a_read_only_profile_refuses_every_mutation_with_the_same_words_from_both(
    place: Place,
) -> None:
    deck = Deck.open(place, read_only=True)
    try:
        for step in STEPS:
            here = dataclasses.replace(PLACE_FOR_REFUSALS, namespace=place.namespace)
            from_cli = through_cli(place, *step.cli(here, "train-digits-00000"), read_only=True)
            from_deck = deck.send(step.request(here, "train-digits-00000"))
            assert from_deck == from_cli, step.action
            assert from_cli["error"].startswith("read-only: profile"), from_cli
    finally:
        deck.session.close()
    assert read_audit() == []  # refused before anything was sent: nothing to audit


@pytest.mark.parametrize("place", ["kubernetes"], indirect=True)  # RBAC is the cluster's
def test_a_viewer_is_refused_every_mutation_with_the_same_words_from_both(
    place: Place,
) -> None:
    deck = Deck.open(place, kube_context="kwok-viewer")
    try:
        for step in STEPS:
            here = dataclasses.replace(PLACE_FOR_REFUSALS, namespace=place.namespace)
            args = step.cli(here, "train-digits-00000")
            from_cli = through_cli(place, *args, kube_context="kwok-viewer")
            from_deck = deck.send(step.request(here, "train-digits-00000"))
            assert from_deck == from_cli, step.action
            assert from_cli["error"].startswith("forbidden: user 'viewer' may not"), from_cli
    finally:
        deck.session.close()
    assert read_audit() == []
