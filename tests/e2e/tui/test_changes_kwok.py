"""On call in the deck, on the test cluster, with real predictors measured through the API
server's pod proxy: an operator's kubectl change points a Deployment's pod at a predictor that
really answers slowly (its batching window makes every request wait); the SLO breaks, the
banner names the change, the Changes screen marks it as followed by a regression, and one key
undoes it (a preview, a confirmation) through the usual path: the Deployment is back on its
first template, and the audit line names the change.

KWOK pods run no containers: each pod of the namespace is led to a real predictor on this
machine (``ProxiedPods``), the one its first declared container port names, so the pods a
rollout makes are led there too as they start (:class:`LeadingPods`)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

from console.audit import read_audit
from console.backends.kubernetes.backend import KubernetesBackend
from console.metrics import MetricsCollector, pod_proxy_source
from console.profile import Profile, SloSettings
from console.tui.app import DeckApp
from tests.e2e.tui.deck_pilot import (
    KwokFleet,
    kwok_fleet_fixture,
    open_changes_until_regressed,
    run,
    undo_selected_change,
    wait_for,
    wait_for_undo_row,
)
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.metrics.conftest import StartLoad, serve, start_load
from tests.support.k8s_objects import apps
from tests.support.predictor import PredictorProcess
from tests.support.proxied_pods import ProxiedPods

kwok_fleet = kwok_fleet_fixture  # the fixtures, by the names the test asks for
__all__ = ["serve", "start_load"]

NAME = "digits"
PROBE = "digits-probe"  # the slow predictor measured before the test, then deleted
REVISION = "deployment.kubernetes.io/revision"


class LeadingPods:
    """Every running pod of the namespace led to this machine as soon as it runs (KWOK gives
    it an IP where nothing listens): what a rollout's new pods need to be measured."""

    def __init__(self, pods: ProxiedPods) -> None:
        self.pods = pods
        self.led: set[str] = set()
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leading pods", daemon=True)

    def __enter__(self) -> LeadingPods:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        pods = self.pods
        body = {"status": {"podIP": pods.address, "podIPs": [{"ip": pods.address}]}}
        while not self._stop.wait(0.2):
            try:
                listed = pods.core.list_namespaced_pod(pods.namespace).items
            except Exception:  # the API server busy: next time
                continue
            for pod in listed:
                running = pod.status.phase == "Running" and not pod.metadata.deletion_timestamp
                if not running or pod.status.pod_ip == pods.address:
                    continue
                try:  # a merge patch replaces the IP list, as ProxiedPods does
                    pods.core.patch_namespaced_pod_status(
                        pod.metadata.name,
                        pods.namespace,
                        body,
                        _content_type="application/merge-patch+json",
                    )
                    self.led.add(pod.metadata.name)
                except ApiException as exc:  # deleted meanwhile: nothing to lead
                    if exc.status != 404:
                        self.problems.append(f"{pod.metadata.name}: {exc.status} {exc.reason}")


def at_revision(k8s: K8sCluster, namespace: str, revision: int) -> int | None:
    """The port the Deployment's pod template declares first, once the Deployment is at
    ``revision`` and its controller has seen its latest spec; None until then."""
    found = apps(k8s).read_namespaced_deployment(NAME, namespace)
    annotations = found.metadata.annotations or {}
    seen = (found.status.observed_generation or 0) >= found.metadata.generation
    if annotations.get(REVISION) != str(revision) or not seen:
        return None
    return int(found.spec.template.spec.containers[0].ports[0].container_port)


def p99s(collector: MetricsCollector, key: tuple[str, str]) -> list[float]:
    return [m.p99_ms for m in collector.history(key) if m.p99_ms is not None]


def slo_between_the_predictors(
    pods: ProxiedPods,
    backend: KubernetesBackend,
    collector: MetricsCollector,
    slow: PredictorProcess,
) -> float:
    """A p99 limit the fast predictor meets and the slow one breaks on this machine now, both
    measured through the pod proxy under their load (the slow one behind a probe deployment,
    deleted afterwards)."""
    namespace = pods.namespace
    fast_key, probe_key = (namespace, NAME), (namespace, PROBE)
    pods.serve(PROBE, slow.port)
    poll_until(
        "both measured",
        lambda: all(len(p99s(collector, k)) >= 8 for k in (fast_key, probe_key)),
        90,
    )
    fast, slowest = max(p99s(collector, fast_key)[-8:]), min(p99s(collector, probe_key)[-8:])
    assert slowest > 2 * fast, f"the slow predictor is not slow enough: p99 {slowest} vs {fast}"
    apps(pods.k8s).delete_namespaced_deployment(PROBE, namespace)
    poll_until("the probe gone", lambda: backend.deployment(namespace, PROBE) is None, 120)
    poll_until("the probe no longer measured", lambda: probe_key not in collector.snapshot(), 60)
    return float((fast * slowest) ** 0.5)


def test_a_kubectl_change_followed_by_a_regression_is_marked_named_and_undone_with_one_key(
    kwok_fleet: KwokFleet,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    serve: Callable[..., PredictorProcess],
    start_load: StartLoad,
) -> None:
    namespace, backend = k8s_namespace, kwok_fleet.backend
    key = (namespace, NAME)
    fast = serve("--host", "0.0.0.0")
    slow = serve("--host", "0.0.0.0", "--batch-timeout-ms", "60")
    fast_load, slow_load = start_load(fast, 10.0), start_load(slow, 5.0)
    pods = ProxiedPods(k8s_cluster, namespace)
    pods.serve(NAME, fast.port)
    poll_until("digits in the deck's cache", lambda: kwok_fleet.cached(NAME), 120)
    poll_until("revision 1", lambda: at_revision(k8s_cluster, namespace, 1) == fast.port, 120)

    collector = MetricsCollector(pod_proxy_source(backend), 3.0, interval_s=0.5)
    found: dict[str, Any] = {}
    with LeadingPods(pods) as leading:
        collector.start()
        try:
            limit = slo_between_the_predictors(pods, backend, collector, slow)
            profile = dataclasses.replace(backend.profile, slo=SloSettings(p99_ms=limit))
            run(lambda: scenario(kwok_fleet, profile, collector, slow, found))
        finally:
            collector.stop()
    assert leading.problems == []  # no pod refused its new IP

    row = found["row"]
    change = row.change
    assert (change.kind.value, change.who, change.via_fleetdeck) == ("edit", "", False)
    assert change.what == "new revision"
    assert (change.affected[0].namespace, change.affected[0].name) == key
    assert change.affected[0].before == "digits v1 (rev 1)"
    assert change.affected[0].after == "digits v1 (rev 2)"
    assert row.effect.regression.startswith("p99 ")  # ... ms > 1.5 × baseline ... ms
    assert row.cell("EFFECT").endswith("REGRESSION")
    assert "1 followed by a regression" in found["title"]
    assert f"1 breaching SLO; worst {namespace}/{NAME}: p99" in found["banner"]
    assert f"last change {change.id}: new revision by ?" in found["banner"]
    assert found["preview"][0] == f"undo {change.id}: new revision"
    assert found["preview"][1].startswith(
        f"  {namespace}/{NAME}: roll back to revision 1 (digits v1 (rev 1)); now digits v1 (rev 2)"
    )
    assert found["back"] == fast.port
    undone = found["undo"].change
    assert (undone.kind.value, undone.who, undone.undoes) == ("undo", "alice", change.id)
    lines = [
        e for e in read_audit(path=kwok_fleet.audit_path) if e.parameters.get("undoes") == change.id
    ]
    assert [(e.action, e.targets, e.user, e.dry_run) for e in lines] == [
        ("rollback", (f"{namespace}/{NAME}",), "alice", False)
    ]
    assert lines[0].parameters.get("to_revision") == 1
    assert [e for e in read_audit(path=kwok_fleet.audit_path) if e.action == "rollback"] == lines
    for load in (fast_load, slow_load):
        assert load.count() > 0
        assert load.failed == 0


async def scenario(
    kwok_fleet: KwokFleet,
    profile: Profile,
    collector: MetricsCollector,
    slow: PredictorProcess,
    found: dict[str, Any],
) -> None:
    k8s, namespace = kwok_fleet.cluster, kwok_fleet.namespace
    key = (namespace, NAME)
    app = DeckApp(
        kwok_fleet.backend,
        profile,
        context="kwok-admin",
        user="alice",
        audit_path=kwok_fleet.audit_path,
        metrics=collector,
    )
    async with app.run_test(size=(160, 50)) as pilot:
        before = len(p99s(collector, key))
        await wait_for(
            pilot,
            "the fast predictor measured for a while with the deck open",
            lambda: len(p99s(collector, key)) >= before + 4,
            within=60,
        )
        assert app.breach_text == ""

        # The operator's change, with kubectl: the pod template now declares the slow
        # predictor's port (a JSON patch: a strategic one would add a port after the first).
        path = "/spec/template/spec/containers/0/ports/0/containerPort"
        patch = json.dumps([{"op": "replace", "path": path, "value": slow.port}])
        k8s.kubectl("patch", f"deployment/{NAME}", "-n", namespace, "--type=json", "-p", patch)
        await wait_for(
            pilot,
            "revision 2",
            lambda: at_revision(k8s, namespace, 2) == slow.port,
            within=180,
        )
        await wait_for(
            pilot,
            "the banner naming the change",
            lambda: "last change" in app.breach_text,
            within=180,
        )
        found["banner"] = app.breach_text

        screen = await open_changes_until_regressed(pilot, app, within=120)
        found["row"] = screen.shown_rows[0]
        found["title"] = str(screen.query_one("#changes-title").render())

        found["preview"] = await undo_selected_change(pilot, app)
        found["back"] = await wait_for(
            pilot,
            "revision 3, the first template again",
            lambda: at_revision(k8s, namespace, 3),
            within=180,
        )
        found["undo"] = await wait_for_undo_row(pilot, screen, within=90)
        await wait_for(
            pilot,
            "the breach over: the fast predictor measured again behind the new pod",
            lambda: app.breach_text == "",
            within=180,
        )


def test_the_deck_builds_its_timeline_in_the_background_and_an_opening_makes_only_what_changed(
    kwok_fleet: KwokFleet,
) -> None:
    """The first ``c`` shows the page the deck built after it started; a change made with the
    screen closed is there at the next opening, and the deployment that did not change is not
    made again."""
    from console.changes.model import Kind
    from console.tui.screens.changes import ChangesScreen

    kwok_fleet.deploy("first", "second")
    namespace = kwok_fleet.namespace
    found: dict[str, Any] = {}

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(
                pilot, "the timeline built in the background", lambda: app.changes.warmed
            )
            memo = app.changes.timeline(app.clusters).live.memo
            built = dict(memo.deployments)
            await pilot.press("c")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ChangesScreen)
            found["at_once"] = [a.name for r in screen.shown_rows for a in r.change.affected]
            await pilot.press("escape")
            kwok_fleet.cluster.kubectl(
                "-n", namespace, "set", "env", "deployment/second", "TIER=gold"
            )
            await pilot.press("c")
            screen = app.screen
            assert isinstance(screen, ChangesScreen)
            found["top"] = await wait_for(
                pilot,
                "the kubectl change at the top",
                lambda: (
                    screen.shown_rows
                    and screen.shown_rows[0].change.kind is Kind.EDIT
                    and screen.shown_rows[0]
                ),
            )
            found["built"], found["rebuilt"] = built, dict(memo.deployments)

    run(scenario)
    assert sorted(found["at_once"]) == ["first", "second"]
    top = found["top"]
    assert top.cell("DEPLOYMENTS") == f"{namespace}/second"
    assert top.cell("WHO").endswith("(not via fleetdeck)")
    first, second = ("", (namespace, "first")), ("", (namespace, "second"))
    assert found["rebuilt"][first] is found["built"][first]
    assert found["rebuilt"][second] is not found["built"][second]
