"""``fleetdeck`` as kubectl fingers type it (issue 17) on the local runtime: real predictor
processes under the agent, the CLI run as a user runs it."""

from __future__ import annotations

import json
import os

from console.backends.local import LocalBackend
from console.profile import Profile
from console.views.format import to_json
from serving.store import ModelStore
from tests.infra.k8s_fixtures import poll_until
from tests.support.cli import Fleetdeck, bash_completions


def json_lines(text: str) -> list[dict[str, object]]:
    """The results ``--json`` printed (an indented list)."""
    found = json.loads(text)
    assert isinstance(found, list)
    return found


def local_fleetdeck() -> Fleetdeck:
    """The CLI in this test's temporary user (the profile fixture set its XDG folders)."""
    return Fleetdeck(dict(os.environ))


def test_ls_yaml_name_describe_events_and_completion_on_the_local_runtime(
    profile: Profile, backend: LocalBackend
) -> None:
    fleetdeck = local_fleetdeck()
    for name in ("digits-a", "digits-b"):
        done = fleetdeck("deploy", name, "--model", "digits", "--version", "1", "--wait")
        assert done.code == 0, done.err

    as_yaml = fleetdeck("ls", "-o", "yaml").yaml()
    assert as_yaml == fleetdeck("ls", "--json").json()
    poll_until("the backend's view current", lambda: len(backend.deployments()) == 2)
    assert as_yaml == to_json(backend.deployments())
    table = fleetdeck("ls", "-o", "wide").out.splitlines()
    assert table[0].split()[:6] == ["NAMESPACE", "NAME", "MODEL", "VERSION", "READY", "UP-TO-DATE"]
    assert fleetdeck("ls", "--no-headers").out.split()[:2] == ["default", "digits-a"]

    # -o name into a second fleetdeck: restart both, as kubectl's `get -o name | xargs`.
    piped = fleetdeck.xargs(["ls", "-o", "name"], ["restart", "--yes", "--json"])
    assert piped.code == 0, piped.err
    assert [r["target"] for r in json_lines(piped.out)] == ["default/digits-a", "default/digits-b"]

    described = fleetdeck("describe", "digits-a", "-o", "yaml").yaml()
    assert described["deployment"]["name"] == "digits-a"
    assert described["route"]["kind"] == "gateway"
    assert "/models/digits-a/" in described["route"]["paths"]
    assert described["model_version"]["runtime"]
    assert described["autoscaler"] is None  # none was made (fleetdeck autoscale makes one)
    text = fleetdeck("describe", "digits-a").out
    assert "/models/digits-a/" in text.split("Route:")[1].splitlines()[0]
    events = fleetdeck("events", "digits-a", "-o", "json").json()
    # The restart goes on meanwhile: later events follow the ones describe showed.
    assert events[: len(described["events"])] == described["events"]

    # A TAB lists the running agent's deployments (it never starts one) and the store's versions.
    env = fleetdeck.env
    assert set(bash_completions(env, "fleetdeck describe digits-")) == {"digits-a", "digits-b"}
    in_store = {str(v) for v in ModelStore(profile.store.root).versions("digits")}
    assert {"1", "2"} <= in_store  # the suite may have published more into this store
    assert set(bash_completions(env, "fleetdeck deploy x --model digits --version ")) == in_store
    assert bash_completions(env, "fleetdeck --profile loc") == ["local"]


def test_logs_of_a_selector_and_no_color_on_the_local_runtime(
    profile: Profile, backend: LocalBackend
) -> None:
    fleetdeck = local_fleetdeck()
    done = fleetdeck(
        "deploy", "digits", "--model", "digits", "--version", "1", "--replicas", "2", "--wait"
    )
    assert done.code == 0, done.err
    merged = fleetdeck("logs", "-l", "fleetdeck.io/model=digits", "--tail", "3")
    assert merged.code == 0, merged.err
    pods = {p.name for p in backend.pods("default", "digits")}
    prefixes = {line.split("] ", 1)[0].lstrip("[") for line in merged.out.splitlines()}
    assert prefixes == pods
    no_colour = Fleetdeck({**fleetdeck.env, "NO_COLOR": "1"})("logs", "deploy/digits")
    assert "\x1b" not in no_colour.out
