"""The deck's Changes screen over 5,000 Deployments × 10 revisions and a 50,000-line audit log.

    python -m bench.console.changes [--count 5000] [--revisions 10] [--audit-lines 50000]
                                    [--idle-seconds 20] [--write]

Against the test cluster (``tests/infra/cluster up``), in one run: makes a namespace with
``--count`` fleetdeck-labelled Deployments (replicas 0) and their revision histories, writes an
audit log for them, then measures in a fresh interpreter running the deck headless at 160×50
(``XDG_STATE_HOME`` a temporary folder, so no real journal is read):

- open: from pressing ``c`` on the full Fleet table, once the deck's background build of the
  timeline is done (``app.changes.warmed``; its time from the deck's start is reported), to the
  Changes screen's first page drawn from a read of its own (``shown_rows`` non-empty,
  ``loader.loads`` ≥ 1, the next frame), median of 3, against
  ``kubectl get replicasets -n NS -o json`` on the same data (median of 3);
- filter: a keystroke typed into the screen's filter to the updated table (median and p90 over
  30 keys, minus the pilot's own round trip), the same filter called directly
  (``set_filter`` and drawing the visible lines), and Textual's DataTable doing the same
  filter (clear + add of the page the screen draws, the newest 500 matches);
- CPU of the deck's process with the Changes screen open and nothing changing, and its RSS;
- where the time goes: cProfile of the screen's read (``_read``, cold as at open and warm as
  the screen's next read), of ``_apply`` and of filter keystrokes, and the time spent in
  garbage collections.

How the histories are made (minutes, not the controller's hour): each Deployment is created
paused with its 10th revision's template, then its ten ReplicaSets are created by this bench
as the deployment controller would have left them (owner reference to the Deployment's uid,
``deployment.kubernetes.io/revision`` 1..10, the Deployment's annotations of the time copied,
``pod-template-hash``), oldest first; once the controller has seen them all (every paused
Deployment at revision 10) every Deployment is resumed: the newest ReplicaSet matches its
template, so the controller makes none of its own. About half of the revisions are fleetdeck's
(``kubernetes.io/change-cause`` "... via fleetdeck" and a ``fleetdeck.io/changed-at`` stamp of
their own, each with its audit line); the rest are another client's image changes, which carry
the stamp of the change before them, as the controller copies it. The API server sets every
``creationTimestamp`` and fleetdeck believes a stamp only within 10 minutes before its
ReplicaSet, so each Deployment's revisions are stamped over the minutes before the bench makes
it: every revision is minutes old at the measurement. The audit lines that made no revision
(scales, pauses, dry runs, failed attempts) spread over the 30 days before.

Deletes the namespace at the end (and waits for it to go), also on failure or Ctrl-C.
``--write`` records the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import dataclasses
import gc
import hashlib
import io
import json
import os
import pstats
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import readme
from bench.console.tui_fleet import CONTEXT, DEFAULT_KUBECONFIG, keys_ms, percentile, rss_mib

MODELS = ("digits", "fraud", "churn", "ranker", "pricing")
# Who changes things: enough people that two of them rarely do the same thing within the
# 5 s in which the timeline takes changes to be one command (here every change falls within
# minutes: see REVISION_MINUTES).
USERS = (
    *("alice", "bob", "carol", "dmitri", "erin", "farid", "grace", "hiro", "ines", "jamal"),
    *("kenji", "lena", "mateo", "nadia", "oskar", "priya", "quinn", "rosa", "sven", "tariq"),
    *("uma", "viktor", "wei", "xenia", "yusuf", "zoe", "ci-bot", "release-bot"),
)
HISTORY_DAYS = 30  # the audit log's lines that made no revision: scales, pauses, dry runs...
# fleetdeck believes a revision's stamp only within 10 minutes before its ReplicaSet was made
# (console/backends/kubernetes/rollout.py STAMP_LAG), and the API server sets that time: each
# Deployment's revisions are stamped within the minutes before the bench makes them.
REVISION_MINUTES = 9
BATCH_SECONDS = 60  # fleetdeck rollouts of one minute share a batch id when batched
KUBECTL_GET = ["get", "replicasets", "-o", "json"]
# Typed into the screen's filter: narrowing to one deployment's rows, widening, two terms, and
# back to everything (the screen then draws the newest 500 of every change).
FILTER_KEYS = [
    *"fraud-012",
    *["backspace"] * 5,
    "space",
    *"bob",
    *["backspace"] * 8,
    *"v3",
    *["backspace"] * 2,
]
ORDER_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what pod-template-hash is spelled with
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
OTHER_REGISTRY = "registry.example.com/ml/predictor"


# -- the data -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Revision:
    number: int
    template: dict[str, Any]
    annotations: dict[str, str]  # the Deployment's at the time, copied onto the ReplicaSet
    when: datetime
    action: str  # "deploy", "rollout", "restart" (fleetdeck's), "" (another client's)
    user: str
    version: int
    before: dict[str, object] | None


@dataclasses.dataclass
class Planned:
    name: str
    model: str
    deployment: dict[str, Any]
    revisions: list[Revision]


def name_of(i: int) -> str:
    return f"{MODELS[i % len(MODELS)]}-{i:04d}"


def _hash(text: str) -> str:
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).digest()
    return "".join(ORDER_CHARS[b % len(ORDER_CHARS)] for b in digest[:10])


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def plan_history(
    i: int, namespace: str, revisions: int, base: dict[str, Any], start: datetime, end: datetime
) -> Planned:
    """One Deployment's ``revisions`` revisions between ``start`` and ``end`` (seeded by
    ``i``), oldest first, and the Deployment as the last one left it (paused, for the fill)."""
    from console.backends.kubernetes.actions import RESTARTED_AT
    from console.backends.kubernetes.manifests import (
        CHANGE_CAUSE,
        CHANGED_AT,
        MODEL_URI,
        NAME_LABEL,
        VERSION_LABEL,
        change_cause,
    )

    rng = random.Random(i)
    name, model = name_of(i), MODELS[i % len(MODELS)]
    template = copy.deepcopy(base["spec"]["template"])
    labels = template["metadata"]["labels"]
    labels[NAME_LABEL] = name
    labels["fleetdeck.io/model"] = model
    container = template["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    env["FLEETDECK_MODEL_NAME"]["value"] = name
    uri_root = env["FLEETDECK_MODEL_URI"]["value"].rsplit("/", 2)[0]
    times = sorted(start + (end - start) * rng.random() for _ in range(revisions))
    for k in range(1, revisions):  # whole seconds apart: two restarts never share a template
        times[k] = max(times[k], times[k - 1] + timedelta(seconds=2))
    version = rng.randint(1, 3)
    replicas = rng.choice((1, 2, 2, 3, 4))
    annotations: dict[str, str] = {}
    planned: list[Revision] = []

    def set_version(v: int) -> None:
        uri = f"{uri_root}/{model}/{v}"
        labels[VERSION_LABEL] = str(v)
        template["metadata"]["annotations"][MODEL_URI] = uri
        env["FLEETDECK_MODEL_URI"]["value"] = uri
        annotations[MODEL_URI] = uri

    for number, when in enumerate(times, start=1):
        user = rng.choice(USERS)
        before: dict[str, object] | None = {
            "revision": number - 1,
            "replicas": replicas,
            "paused": False,
            "version": str(version),
        }
        if number == 1:
            action, before = "deploy", None
            set_version(version)
            annotations[CHANGE_CAUSE] = change_cause(f"deploy {model} v{version}", user)
        elif rng.random() < 0.5:
            if rng.random() < 0.75:
                action = "rollout"
                version += 1
                set_version(version)
                annotations[CHANGE_CAUSE] = change_cause(f"rollout {model} v{version}", user)
            else:
                action = "restart"
                template["metadata"]["annotations"][RESTARTED_AT] = when.strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
                annotations[CHANGE_CAUSE] = change_cause("restart", user)
        else:
            # Another client (a CD tool, kubectl set image): a new build of the predictor; the
            # Deployment's annotations stay as fleetdeck's last change left them.
            action = ""
            container["image"] = f"{OTHER_REGISTRY}:sha-{rng.getrandbits(28):07x}"
        if action:
            annotations[CHANGED_AT] = _stamp(when)
        planned.append(
            Revision(
                number,
                copy.deepcopy(template),
                dict(annotations),
                when,
                action,
                user,
                version,
                before,
            )
        )
    deployment = copy.deepcopy(base)
    deployment["metadata"] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    deployment["spec"]["selector"] = {"matchLabels": {NAME_LABEL: name}}
    deployment["spec"]["template"] = copy.deepcopy(template)
    deployment["spec"]["paused"] = True
    deployment["spec"]["revisionHistoryLimit"] = revisions
    return Planned(name, model, deployment, planned)


def replicaset(planned: Planned, revision: Revision, uid: str) -> dict[str, Any]:
    """The ReplicaSet the deployment controller would have made for ``revision``."""
    template = copy.deepcopy(revision.template)
    pod_hash = _hash(json.dumps(template, sort_keys=True))
    template["metadata"]["labels"][TEMPLATE_HASH] = pod_hash
    selector = {**planned.deployment["spec"]["selector"]["matchLabels"], TEMPLATE_HASH: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{planned.name}-{pod_hash}",
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                **revision.annotations,
                REVISION: str(revision.number),
                "deployment.kubernetes.io/desired-replicas": "0",
                "deployment.kubernetes.io/max-replicas": "0",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": planned.name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": 0, "selector": {"matchLabels": selector}, "template": template},
    }


def audit_lines(
    plans: Sequence[Planned], namespace: str, total: int, until: datetime, profile: str
) -> list[str]:
    """``total`` lines as fleetdeck writes them (``AuditEntry.to_json``, compact), oldest first:
    one for each of fleetdeck's revisions (its time a moment after the stamp, the state before,
    some in a batch), the rest scales, pauses and resumes, dry runs and failed attempts over
    the ``HISTORY_DAYS`` days up to ``until``."""
    from console.audit import AuditEntry, TargetResult

    rng = random.Random(total)
    entries: list[AuditEntry] = []

    def line(
        when: datetime,
        user: str,
        action: str,
        target: str,
        parameters: dict[str, object],
        *,
        ok: bool = True,
        message: str = "",
        dry_run: bool = False,
    ) -> None:
        entries.append(
            AuditEntry(
                time=when,
                user=user,
                profile=profile,
                context=CONTEXT,
                action=action,
                targets=(target,),
                parameters=parameters,
                dry_run=dry_run,
                results=(TargetResult(target, ok, message),),
            )
        )

    for planned in plans:
        target = f"{namespace}/{planned.name}"
        for revision in planned.revisions:
            if not revision.action:
                continue
            when = revision.when + timedelta(seconds=rng.uniform(0.3, 2.0))
            parameters: dict[str, object]
            if revision.action == "deploy":
                parameters = {"model": planned.model, "version": revision.version, "replicas": 2}
                message = f"deployed {planned.name}"
            elif revision.action == "rollout":
                parameters = {"version": revision.version, "verify": True}
                message = f"rolled {planned.name} out to {planned.model} version {revision.version}"
            else:
                parameters = {}
                message = f"restarted {planned.name}"
            if revision.before is not None:
                parameters["before"] = revision.before
            if revision.action == "rollout" and rng.random() < 0.2:
                bucket = int(revision.when.timestamp() // BATCH_SECONDS)
                parameters["batch"] = f"b{_hash(str(bucket))[:6]}"
            line(when, revision.user, revision.action, target, parameters, message=message)
    while len(entries) < total:
        planned = rng.choice(plans)
        target = f"{namespace}/{planned.name}"
        when = until - timedelta(days=HISTORY_DAYS) * rng.random()
        user = rng.choice(USERS)
        before: dict[str, object] = {
            "revision": rng.randint(1, 10),
            "replicas": rng.randint(0, 4),
            "paused": False,
            "version": str(rng.randint(1, 6)),
        }
        kind = rng.random()
        if kind < 0.6:
            replicas = rng.randint(0, 6)
            parameters = {"replicas": replicas, "before": before}
            line(when, user, "scale", target, parameters, message=f"scaled to {replicas}")
        elif kind < 0.75:
            line(when, user, "pause", target, {"before": before}, message="paused")
            later = when + timedelta(minutes=rng.uniform(1, 90))
            line(later, user, "resume", target, {"before": {**before, "paused": True}})
        elif kind < 0.9:
            parameters = {"version": rng.randint(2, 7), "verify": True}
            line(when, user, "rollout", target, parameters, dry_run=True, message="would roll")
        else:
            parameters = {"version": rng.randint(2, 7), "verify": True, "before": before}
            line(when, user, "rollout", target, parameters, ok=False, message="not in the store")
    entries.sort(key=lambda e: e.time)
    return [json.dumps(e.to_json(), separators=(",", ":"), default=str) for e in entries[:total]]


class Api:
    """Raw JSON requests on the admin context, many threads at once."""

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=CONTEXT, client_configuration=configuration
        )
        configuration.connection_pool_maxsize = 32
        self.client: Any = client.ApiClient(configuration)
        self.host = configuration.host
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": str(configuration.get_api_key_with_prefix("BearerToken")),
        }
        self.pool = self.client.rest_client.pool_manager

    def call(self, method: str, path: str, body: object = None, content: str = "") -> Any:
        headers = dict(self.headers)
        if content:
            headers["Content-Type"] = content
        data = None if body is None else json.dumps(body).encode()
        answer = self.pool.request(
            method, self.host + path, body=data, headers=headers, preload_content=True
        )
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.data[:300]!r}")
        return json.loads(answer.data)


def fill(
    api: Api,
    namespace: str,
    count: int,
    revisions: int,
    base: dict[str, Any],
    say: Callable[[str], None],
) -> list[Planned]:
    """Each Deployment (paused) and its ReplicaSets oldest first, its revisions stamped over
    the minutes before; then every one resumed. Returns what was made."""
    apps = f"/apis/apps/v1/namespaces/{namespace}"
    done = [0]
    lock = threading.Lock()

    def one(i: int) -> Planned:
        now = datetime.now(UTC)
        start = now - timedelta(minutes=REVISION_MINUTES)
        end = now - timedelta(seconds=2 * revisions + 1)
        planned = plan_history(i, namespace, revisions, base, start, end)
        made = api.call("POST", f"{apps}/deployments", planned.deployment)
        uid = made["metadata"]["uid"]
        for revision in planned.revisions:
            api.call("POST", f"{apps}/replicasets", replicaset(planned, revision, uid))
        with lock:
            done[0] += 1
            if done[0] % 500 == 0:
                say(f"{done[0]} deployments with their revisions")
        return planned

    with ThreadPoolExecutor(16) as pool:
        plans = list(pool.map(one, range(count)))
    # The controller syncs a paused Deployment too and gives it the revision of the ReplicaSet
    # that matches its template: once every one says the last revision, the controller has
    # seen them all, and resuming makes no ReplicaSet of its own (resumed sooner, a Deployment
    # whose newest ReplicaSet the controller had not seen yet got an 11th).
    want = str(plans[0].revisions[-1].number)
    while True:
        items = api.call("GET", f"{apps}/deployments")["items"]
        behind = [
            d for d in items if (d["metadata"].get("annotations") or {}).get(REVISION) != want
        ]
        if not behind:
            break
        say(f"{len(behind)} deployments not yet at revision {want} (paused)")
        time.sleep(3)
    resume = {"spec": {"paused": False}}
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda p: api.call(
                    "PATCH", f"{apps}/deployments/{p.name}", resume, "application/merge-patch+json"
                ),
                plans,
            )
        )
    return plans


def settled(api: Api, namespace: str, count: int, revisions: int) -> str:
    """ "" once every Deployment is resumed, observed and at its last revision and the
    namespace holds exactly ``count × revisions`` ReplicaSets; else what is not yet."""
    apps = f"/apis/apps/v1/namespaces/{namespace}"
    deployments = api.call("GET", f"{apps}/deployments")["items"]
    waiting = [
        d
        for d in deployments
        if (d.get("status") or {}).get("observedGeneration") != d["metadata"]["generation"]
        or d["metadata"].get("annotations", {}).get(REVISION) != str(revisions)
    ]
    page = api.call("GET", f"{apps}/replicasets?limit=1")
    total = len(page["items"]) + int(page["metadata"].get("remainingItemCount") or 0)
    if len(deployments) != count or waiting or total != count * revisions:
        return (
            f"{len(deployments)} deployments ({len(waiting)} not settled), "
            f"{total} replicasets (want {count * revisions})"
        )
    return ""


def screen_version() -> str:
    """Which Changes screen was measured: HEAD's, or HEAD's with changes in the working tree."""
    path = "console/tui/screens/changes.py"
    root = Path(__file__).resolve().parents[2]

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", *words], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not git("status", "--porcelain", "--", path, "console/tui/widgets"):
        return f"the screen as committed at {head}"
    digest = hashlib.sha1((root / path).read_bytes(), usedforsecurity=False).hexdigest()[:7]
    return f"the screen at {head} with uncommitted changes (screens/changes.py {digest})"


def kubectl_seconds(kubeconfig: str, namespace: str) -> float:
    began = time.perf_counter()
    command = ["kubectl", "--kubeconfig", kubeconfig, "--context", CONTEXT, "-n", namespace]
    subprocess.run(
        [*command, *KUBECTL_GET],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


# -- the deck (its own process) -------------------------------------------------------------------
@dataclasses.dataclass
class ChangesRun:
    fleet_full_s: float = 0.0
    open_s: list[float] = dataclasses.field(default_factory=list)
    rows: int = 0
    shown: int = 0
    floor_ms: list[float] = dataclasses.field(default_factory=list)
    filter_ms: list[float] = dataclasses.field(default_factory=list)
    filter_shown: list[int] = dataclasses.field(default_factory=list)
    direct_ms: list[float] = dataclasses.field(default_factory=list)
    datatable_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_percent: float = 0.0
    idle_seconds: float = 0.0
    idle_loads: int = 0
    idle_rebuilds: int = 0
    rss_mib: float = 0.0
    hwm_mib: float = 0.0
    cold_read_s: float = 0.0
    warm_read_s: float = 0.0
    apply_ms: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)
    open_gc_s: list[float] = dataclasses.field(default_factory=list)
    open_gc_full: list[int] = dataclasses.field(default_factory=list)
    idle_gc_s: float = 0.0
    idle_gc_full: int = 0
    tracked_objects: int = 0
    grouped: int = 0  # changes that are several of the same command (their members' count)
    members: int = 0
    via_fleetdeck: int = 0  # revisions the deck took for fleetdeck's
    load_at_open: float = 0.0
    warmed_s: float = 0.0  # from the deck's start to its background timeline built


class GcClock:
    """Time the interpreter spent in garbage collections, and how many were full ones."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._began
        self.full += info["generation"] == 2

    def reading(self) -> tuple[float, int]:
        return self.seconds, self.full


def hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def profiled(call: Callable[[], object], title: str, out: io.StringIO) -> float:
    """Run ``call`` under cProfile; its top costs (cumulative, then own time) go to ``out``."""
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    call()
    profile.disable()
    took = time.perf_counter() - began
    out.write(f"\n==== {title}: {took:.3f} s under the profiler ====\n")
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(28)
    stats.sort_stats("tottime").print_stats(18)
    return took


def texts_of(keys: Sequence[str]) -> list[str]:
    text, texts = "", []
    for key in keys:
        if key == "backspace":
            text = text[:-1]
        else:
            text += " " if key == "space" else key
        texts.append(text)
    return texts


async def deck_run(namespace: str, count: int, audit: Path, idle: float, profile_out: Path) -> Any:
    from textual.pilot import Pilot

    from bench.console.tui_fleet import full_table, new_backend
    from console.tui.app import DeckApp
    from console.tui.screens.changes import ChangesScreen

    result = ChangesRun()
    clock = GcClock()
    began = time.perf_counter()
    backend = new_backend(namespace)
    backend.start(timeout=300)
    app = DeckApp(backend, backend.profile, context=CONTEXT, user="bench", audit_path=audit)
    report = io.StringIO()
    rows: list[Any] = []

    async def opened(pilot: Pilot[None]) -> ChangesScreen:
        while True:
            screen = app.screen
            if isinstance(screen, ChangesScreen) and screen.shown_rows and screen.loader.loads >= 1:
                await pilot.pause()  # the frame with them
                return screen
            await pilot.pause(0.01)

    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await full_table(pilot, app, count)
            result.fleet_full_s = time.perf_counter() - began
            # The deck builds the timeline in the background after it starts: a person
            # opens Changes minutes into a session, after it.
            while not app.changes.warmed and time.perf_counter() - began < 600:
                await pilot.pause(0.1)
            result.warmed_s = time.perf_counter() - began
            await pilot.pause(2.0)
            result.load_at_open = os.getloadavg()[0]
            for attempt in range(3):
                collected, full = clock.reading()
                started = time.perf_counter()
                await pilot.press("c")
                screen = await opened(pilot)
                result.open_s.append(time.perf_counter() - started)
                result.open_gc_s.append(clock.seconds - collected)
                result.open_gc_full.append(clock.full - full)
                print(f"open {attempt + 1}: {result.open_s[-1]:.2f} s", file=sys.stderr)
                if attempt < 2:
                    await pilot.press("escape")
                    await pilot.pause(1.0)
            result.rows, result.shown = len(screen.rows), len(screen.shown_rows)
            result.problems = list(screen.problems)
            several = [r.change for r in screen.rows if len(r.change.affected) > 1]
            result.grouped = len(several)
            result.members = sum(len(c.affected) for c in several)
            histories = backend.histories().values()
            result.via_fleetdeck = sum(1 for h in histories for r in h if r.via_fleetdeck)
            result.tracked_objects = len(gc.get_objects())
            await pilot.pause(1.0)
            await pilot.press("slash")
            result.floor_ms = await keys_ms(pilot, ["f12"] * 20)
            for key in FILTER_KEYS:
                result.filter_ms += await keys_ms(pilot, [key])
                result.filter_shown.append(len(screen.shown_rows))
            await pilot.press("escape")  # the filter cleared, the table focused
            await pilot.pause(1.0)
            table = getattr(screen, "table", None)
            for text in texts_of(FILTER_KEYS):
                started = time.perf_counter()
                screen.set_filter(text)
                if table is not None:
                    for y in range(table.size.height):
                        table.render_line(y)
                result.direct_ms.append((time.perf_counter() - started) * 1000)
                await pilot.pause()
            screen.set_filter("")
            await pilot.pause(3.0)
            loads, rebuilds = screen.loader.loads, screen.live.rebuilds
            collected, full = clock.reading()
            cpu, wall = time.process_time(), time.perf_counter()
            await pilot.pause(idle)
            result.idle_seconds = time.perf_counter() - wall
            result.idle_gc_s, result.idle_gc_full = clock.seconds - collected, clock.full - full
            result.cpu_percent = 100 * (time.process_time() - cpu) / result.idle_seconds
            result.idle_loads = screen.loader.loads - loads
            result.idle_rebuilds = screen.live.rebuilds - rebuilds
            result.rss_mib, result.hwm_mib = rss_mib(), hwm_mib()
            # Where the time goes: a cold read (a new screen's, as at open), a warm one (as
            # every few seconds while nothing changed), and applying the rows to the table.
            cold = ChangesScreen(app.clusters.home, app.clusters)
            result.cold_read_s = profiled(cold._read, "ChangesScreen._read, cold", report)
            result.warm_read_s = profiled(screen._read, "ChangesScreen._read, warm", report)
            result.apply_ms = 1000 * profiled(screen._apply, "ChangesScreen._apply", report)
            await pilot.press("slash")
            keys = FILTER_KEYS[:14]
            profile = cProfile.Profile()
            began = time.perf_counter()
            profile.enable()
            await keys_ms(pilot, keys)
            profile.disable()
            report.write(
                f"\n==== {len(keys)} filter keystrokes, each to its frame: "
                f"{time.perf_counter() - began:.3f} s under the profiler ====\n"
            )
            stats = pstats.Stats(profile, stream=report)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
            await pilot.press("escape")
            rows = list(screen.rows)
    finally:
        backend.close()
    with open(profile_out, "w") as out:  # noqa: ASYNC230 (the deck is done: nothing waits)
        out.write(report.getvalue())
    result.datatable_ms = await datatable_filter_ms(rows, texts_of(FILTER_KEYS))
    return result


async def datatable_filter_ms(rows: Sequence[Any], texts: Sequence[str]) -> list[float]:
    """Textual's DataTable doing the screen's filter as it was first written: filter every row,
    clear, add the newest 500 matches (styled cells, a key each), the next frame."""
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from console.tui.screens.changes import SHOWN_ROWS
    from console.views.changes import HEADERS, parse_change_filter, visible
    from console.views.format import printable

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable(cursor_type="row", zebra_stripes=True)

    app = Plain()
    times = []
    async with app.run_test(size=(160, 50)) as pilot:
        table: DataTable[Text] = app.query_one(DataTable)
        table.add_columns(*HEADERS)
        for text in ["", *texts]:
            started = time.perf_counter()
            page = visible(rows, parse_change_filter(text))[:SHOWN_ROWS]
            table.clear()
            for row in page:
                table.add_row(*(Text(printable(c)) for c in row.cells), key=row.change.id)
            await pilot.pause()
            times.append((time.perf_counter() - started) * 1000)
    return times[1:]


def deck_in_a_process(
    namespace: str, count: int, audit: Path, state: Path, idle: float, profile_out: Path
) -> ChangesRun:
    command = [sys.executable, "-m", "bench.console.changes", "--deck", namespace]
    command += ["--count", str(count), "--audit", str(audit), "--idle-seconds", str(idle)]
    command += ["--profile-out", str(profile_out)]
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    return ChangesRun(**json.loads(out.strip().splitlines()[-1]))


# -- the report -----------------------------------------------------------------------------------
def report(
    args: argparse.Namespace,
    run: ChangesRun,
    kubectl: float,
    load_at_start: tuple[float, float, float],
    fill_s: float,
    version: str,
) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    opened = statistics.median(run.open_s)
    floor = statistics.median(run.floor_ms)
    keys = [t - floor for t in run.filter_ms]
    key_median, key_p90 = statistics.median(keys), percentile(keys, 0.9)
    table_median = statistics.median(run.datatable_ms)
    table_p90 = percentile(run.datatable_ms, 0.9)
    direct, direct_p90 = statistics.median(run.direct_ms), percentile(run.direct_ms, 0.9)
    load = "/".join(f"{v:.2f}" for v in load_at_start)

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    revisions = args.count * args.revisions
    open_gc = statistics.median(run.open_gc_s)
    lines = [
        f"### Deck, Changes screen ({today}, {os.cpu_count()} cores, load average at start "
        f"{load}, at the first open {run.load_at_open:.2f}; headless 160×50)",
        "",
        f"`python -m bench.console.changes --count {args.count} --revisions {args.revisions} "
        f"--audit-lines {args.audit_lines}`; {version}. {args.count:,} replicas-0 Deployments "
        f"× {args.revisions} revisions ({revisions:,} ReplicaSets, {run.via_fleetdeck:,} of them "
        f"taken for fleetdeck's; made and settled in {fill_s:.0f} s) and an audit log of "
        f"{args.audit_lines:,} lines: {run.rows:,} changes in the timeline ({run.grouped:,} of "
        f"them several revisions or lines of one command, {run.members:,} in all).",
        "",
        "| measure | deck | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| open: `c` on the full Fleet table → first page drawn, s (median of 3: "
        f"{', '.join(f'{s:.2f}' for s in run.open_s)}; of which in garbage collections "
        f"{open_gc:.2f}) | {opened:.2f} | kubectl get "
        f"replicasets -n NS -o json {kubectl:.2f} | {opened / kubectl:.2f} | ≤ 1 s "
        f"| {met(opened <= 1.0)} |",
        f"| filter keystroke → updated table, ms median (p90) over {len(keys)} keys; pilot "
        f"round trip minus its {floor:.0f} ms floor | {key_median:.1f} ({key_p90:.1f}) "
        f"| DataTable: filter, clear + add the page (≤ 500 rows) {table_median:.0f} "
        f"({table_p90:.0f}) | {key_median / table_median:.2f} | < 50 | {met(key_median < 50)} |",
        f"| the same filter called directly (`set_filter`, draw the visible lines), ms median "
        f"(p90) | {direct:.1f} ({direct_p90:.1f}) | | {direct / table_median:.2f} | < 50 "
        f"| {met(direct < 50)} |",
        f"| CPU with the Changes screen open, nothing changing, % of one core "
        f"({run.idle_loads} reads, {run.idle_rebuilds} rebuilds in {run.idle_seconds:.0f} s; "
        f"{run.idle_gc_s:.1f} s in garbage collections, {run.idle_gc_full} full) "
        f"| {run.cpu_percent:.1f} | | | < 10 | {met(run.cpu_percent < 10)} |",
        f"| RSS of the deck's process (its cache of {args.count:,} Deployments and "
        f"{args.count * args.revisions:,} ReplicaSets, the timeline), MB (peak) "
        f"| {run.rss_mib:.0f} ({run.hwm_mib:.0f}) | | | | |",
        "",
        f"The deck had its Fleet table full {run.fleet_full_s:.1f} s after it started and "
        f"its timeline built in the background {run.warmed_s:.1f} s after it started; `c` "
        f"was pressed after that (a `c` before it waits for that build).",
        "",
        f"Where the time goes (one call each under cProfile, after the measurements): a cold "
        f"read (a new screen's: revisions, the whole audit log, the timeline, the rows) "
        f"{run.cold_read_s:.2f} s; a warm read (the screen's next one) "
        f"{run.warm_read_s:.2f} s; `_apply` (the newest 500 into the table) {run.apply_ms:.0f} ms; "
        f"the process's heap {run.tracked_objects:,} objects tracked by the collector (full "
        f"collections at the opens: {', '.join(str(n) for n in run.open_gc_full)}).",
    ]
    if run.problems:
        lines.append(f"The screen said: {'; '.join(run.problems)}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--revisions", type=int, default=10)
    parser.add_argument("--audit-lines", type=int, default=50000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--write", action="store_true", help="record in bench/README.md")
    parser.add_argument("--deck", metavar="NAMESPACE", help=argparse.SUPPRESS)
    parser.add_argument("--audit", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    kubeconfig = os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG))
    os.environ["KUBECONFIG"] = kubeconfig
    if args.deck:
        run = asyncio.run(
            deck_run(args.deck, args.count, args.audit, args.idle_seconds, args.profile_out)
        )
        print(json.dumps(dataclasses.asdict(run)))
        return

    def say(message: str) -> None:
        print(f"changes {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)

    from bench.fleet.clusters import wait_gone
    from console.backends.kubernetes.manifests import change_cause, predictor_objects
    from console.profile import load_profile

    load_at_start = os.getloadavg()
    say(f"load average {load_at_start}")
    profile = load_profile("kwok")
    api = Api(kubeconfig)
    namespace = f"bench-changes-{secrets.token_hex(3)}"
    base = predictor_objects(
        profile, namespace, "base", "digits", 1, replicas=0, cause=change_cause("deploy", "x")
    )[0]
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-changes-"))
    state = folder / "state"
    state.mkdir()
    audit = folder / "audit.jsonl"
    try:
        api.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        began = time.perf_counter()
        filled_from = datetime.now(UTC) - timedelta(minutes=REVISION_MINUTES)
        plans = fill(api, namespace, args.count, args.revisions, base, say)
        lines = audit_lines(plans, namespace, args.audit_lines, filled_from, profile.name)
        audit.write_text("\n".join(lines) + "\n")
        ours = sum(1 for p in plans for r in p.revisions if r.action)
        say(
            f"{len(plans) * args.revisions} revisions ({ours} fleetdeck's), "
            f"{len(lines)} audit lines ({audit.stat().st_size / 2**20:.1f} MiB)"
        )
        while problem := settled(api, namespace, args.count, args.revisions):
            say(f"waiting for the controller: {problem}")
            time.sleep(5)
        fill_s = time.perf_counter() - began
        say(f"filled and settled in {fill_s:.0f} s")
        kubectl_seconds(kubeconfig, namespace)  # warm-up
        kubectl = statistics.median(kubectl_seconds(kubeconfig, namespace) for _ in range(3))
        say(f"kubectl get replicasets: {kubectl:.2f} s")
        profile_out = folder / "profile.txt"
        version = screen_version()
        run = deck_in_a_process(namespace, args.count, audit, state, args.idle_seconds, profile_out)
        print(profile_out.read_text(), file=sys.stderr)
    finally:
        try:
            api.call("DELETE", f"/api/v1/namespaces/{namespace}")
            wait_gone({"a": api.client}, namespace)
        except Exception as exc:  # the run's numbers are still reported
            print(f"clean-up: {exc!r}", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
    table = report(args, run, kubectl, load_at_start, fill_s, version)
    print(table)
    if args.write:
        readme.record("console-changes", table, "## Console")


if __name__ == "__main__":
    main()
