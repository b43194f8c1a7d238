"""The Training screen: training and scoring jobs and sweeps with kind, phase, GPUs, node,
duration, pending reason and progress (a training job's last epoch, a scoring job's examples
done/total and rate), a loss/accuracy plot of the job under the cursor, and the ways on from
there: launch a job or a sweep, open a job's (or a sweep's) logs, deploy or roll out the version
a finished job exported.

Jobs come from the backend's cache and progress from each job's log (its JSON epoch lines), both
read through the screen's live loader (a thread worker; a refresh never overlaps a running one; a
failed read is shown and retried), and finished jobs' logs are read once. Results come back as
one message and are applied in one update that keeps the cursor.

In a deck over several clusters the screen lists every cluster's jobs with a CLUSTER column; a
cluster whose read fails keeps its last jobs and says why, and what a job leads to (its logs,
deploying or rolling out what it exported) happens in the job's cluster, by that cluster's rules.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from console.backends.base import KnowsGpus, LogRequest
from console.model import ActionResult, GpuCapacity, JobPhase, TrainingJob
from console.profile import Profile
from console.tui.context import ClusterDecks, DeckContext, SessionScreen
from console.tui.loader import Incomplete, LiveLoader, Loaded, describe
from console.tui.messages import OpenLogs
from console.tui.widgets.cursor import item_under_cursor
from console.tui.widgets.release import DeployDialog, RolloutDialog, RolloutPicker
from console.tui.widgets.train_form import TrainForm
from console.tui.widgets.where_line import WhereLine
from console.views.epoch_log import (
    ROW_METRICS,
    JobProgress,
    format_metrics,
    format_scored,
    parse_progress,
)
from console.views.fleet_data import Clock
from console.views.format import printable

REFRESH_SECONDS = 5.0
GPU_SECONDS = 30.0  # the nodes' GPUs are read at most this often (a list of every node)
CHANGE_SECONDS = 2.0  # after the cache reports a change, load at most this often
PROGRESS_TAIL = 2_000  # log lines read per job for its epochs (two lines per epoch)
LOGS_TAIL = 1_000
# Fixed widths: stable columns while rows come and go (the reason is long: scroll right).
COLUMNS = (
    ("NAME", 24),
    ("KIND", 5),
    ("PHASE", 9),
    ("GPUS", 4),
    ("DURATION", 8),
    ("PROGRESS", 38),  # a training job's last epoch, a scoring job's done/total
    ("NODE", 12),
    ("MODEL", 12),
    ("SWEEP", 24),
    ("REASON", 120),
)
CLUSTER_COLUMN = ("CLUSTER", 10)  # after NAME, in a deck over several clusters
JobKey = tuple[str, str, str]  # (cluster, namespace, name); the cluster is "" in a one-cluster deck


def job_key(job: TrainingJob) -> JobKey:
    return (job.cluster, job.namespace, job.name)


@dataclass(frozen=True)
class JobsRead:
    """One read of the screen: the jobs, their progress, and whose log could not be read."""

    jobs: list[TrainingJob]
    progress: dict[JobKey, JobProgress]
    log_errors: dict[JobKey, str]  # why a job's log could not be read just now
    # Each cluster's GPUs, or why they are unknown; empty: not read this time (kept as shown).
    gpus: dict[str, GpuCapacity | str] = field(default_factory=dict)


def read_jobs(backend: Any, known: Mapping[JobKey, JobProgress], cluster: str = "") -> JobsRead:
    """The jobs and their progress (blocking: from a worker). A finished job's progress is read
    once (``known`` has it); a failed read of the jobs raises (the loader says why, retries).
    ``cluster``: the name its jobs are shown under in a deck over several."""
    jobs = [dataclasses.replace(j, cluster=cluster) for j in backend.jobs()]
    progress: dict[JobKey, JobProgress] = {}
    log_errors: dict[JobKey, str] = {}
    for job in jobs:
        key = job_key(job)
        finished = job.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)
        seen = key in known and bool(known[key].epochs or known[key].scored)
        if key in known and ((finished and seen) or job.phase is JobPhase.PENDING):
            progress[key] = known[key]  # a finished job's log does not change
            continue
        if job.phase is JobPhase.PENDING:
            continue
        read, log_errors[key] = read_progress(backend, job)
        progress[key] = read or known.get(key) or JobProgress()
    return JobsRead(jobs, progress, log_errors)


def read_gpus(backend: KnowsGpus) -> GpuCapacity | str:
    """The cluster's GPUs, or why they are not known."""
    try:
        return backend.gpu_capacity()
    except Exception as exc:  # the jobs are still shown; the header says why
        return describe(exc)


def read_progress(backend: Any, job: TrainingJob) -> tuple[JobProgress | None, str]:
    """The job's progress, or None and why its log could not be read ("" for no pods)."""
    try:
        pods = backend.job_pods(job.namespace, job.name)
        if not pods:
            return None, ""
        stop = threading.Event()
        request = LogRequest(pods, job.namespace, tail=PROGRESS_TAIL, stop=stop)
        return parse_progress(backend.logs(request)), ""
    except Exception as exc:  # a log that cannot be read now: keep what was shown, say why
        return None, f"{type(exc).__name__}: {exc}"


def duration(job: TrainingJob, now: datetime) -> str:
    if job.started is None:
        return "-"
    seconds = int(((job.finished or now) - job.started).total_seconds())
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def progress_cell(job: TrainingJob, progress: JobProgress | None) -> str:
    if job.kind == "score":
        return format_scored(progress)
    return format_metrics(progress.last if progress else None, ROW_METRICS)


def job_row(job: TrainingJob, progress: JobProgress | None, now: datetime) -> tuple[str, ...]:
    sweep = f"{job.sweep}#{job.trial}" if job.sweep is not None else "-"
    return (
        job.name,
        job.kind,
        job.phase.value,
        str(job.gpus),
        duration(job, now),
        progress_cell(job, progress),
        job.node or "-",
        job.model,
        sweep,
        job.pending_reason or "-",
    )


@dataclass(frozen=True)
class Refusals:
    """Which of this screen's mutations are not offered, and why."""

    train: str = ""
    deploy: str = ""
    rollout: str = ""

    def lines(self) -> list[str]:
        named = (("launch", self.train), ("deploy", self.deploy), ("roll out", self.rollout))
        return [f"{action}: {reason}" for action, reason in named if reason]


@dataclass(frozen=True)
class ClusterRefusals:
    """Each cluster's :class:`Refusals` ("" is a one-cluster deck's)."""

    answers: dict[str, Refusals]


class TrainingScreen(SessionScreen):
    DEFAULT_CSS = """
    TrainingScreen #training-header {
        height: auto; max-height: 2; background: $panel; padding: 0 1;
    }
    TrainingScreen DataTable { height: 1fr; min-height: 5; }
    TrainingScreen #training-detail { height: 9; }
    TrainingScreen #training-info { width: 1fr; min-width: 30; padding: 0 1; }
    TrainingScreen PlotextPlot { width: 2fr; }
    TrainingScreen #training-notice {
        height: auto; max-height: 2; color: $text-muted; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="training.back"),
        Binding("n", "launch", "Launch job/sweep", id="training.launch"),
        Binding("l", "logs", "Logs", id="training.logs"),
        Binding("L", "sweep_logs", "Sweep logs", id="training.sweep_logs"),
        Binding("d", "deploy", "Deploy version", id="training.deploy"),
        Binding("r", "rollout", "Roll out", id="training.rollout"),
        Binding("ctrl+r", "refresh", "Refresh", id="training.refresh"),
        Binding("j", "cursor_down", "Down", show=False, id="training.cursor_down"),
        Binding("k", "cursor_up", "Up", show=False, id="training.cursor_up"),
    ]

    def __init__(
        self,
        backend: Any,
        profile: Profile,
        *,
        deck: DeckContext | None = None,
        clock: Clock | None = None,
        live: bool | None = None,
        clusters: ClusterDecks | None = None,
    ) -> None:
        super().__init__(backend, profile, deck)
        self._clusters = clusters  # a deck over several: every cluster's jobs
        self.gpus: dict[str, GpuCapacity | str] = {}  # by cluster: its GPUs, or why unknown
        self._gpus_read_at = -GPU_SECONDS  # time.monotonic() of the last read (the worker's)
        self.clock = clock
        self.live = live
        self.jobs: list[TrainingJob] = []
        self.progress: dict[JobKey, JobProgress] = {}
        self.log_errors: dict[JobKey, str] = {}  # why a job's log could not be read just now
        self.refusals: dict[str, Refusals] = {}  # by cluster ("" in a one-cluster deck)
        self.notice = ""
        self.checked = False  # the permission check has answered
        self.loader = LiveLoader(
            self,
            self._read,
            name="training",
            what="the training jobs",
            min_interval=CHANGE_SECONDS,
            partial_backoff=False,  # one cluster failing never slows the others' jobs
        )
        self.permission_check = LiveLoader(
            self, self._read_refusals, name="training-permissions", what="what you may do here"
        )

    def now(self) -> datetime:
        return (self.clock or self.deck.clock)()

    @property
    def clusters(self) -> ClusterDecks:
        return self._clusters or ClusterDecks.single(self.deck)

    @property
    def several(self) -> bool:
        return self._clusters is not None and self._clusters.several

    def deck_of(self, job: TrainingJob | None) -> DeckContext:
        """The deck of the cluster ``job`` runs in (the first cluster's when there is none)."""
        if job is None or not self.several:
            return self.deck
        return self.clusters.of(job.cluster)

    def _read(self) -> JobsRead | Incomplete[JobsRead]:
        """Every cluster's jobs and, now and then, GPUs (blocking: the loader's worker)."""
        found = self._read_jobs()
        if time.monotonic() - self._gpus_read_at >= GPU_SECONDS:
            self._gpus_read_at = time.monotonic()
            gpus = {
                cluster: read_gpus(deck.backend)
                for cluster, deck in self.clusters.decks.items()
                if isinstance(deck.backend, KnowsGpus)  # the local runtime does not say
            }
            if isinstance(found, Incomplete):
                return Incomplete(dataclasses.replace(found.value, gpus=gpus), found.error)
            return dataclasses.replace(found, gpus=gpus)
        return found

    def _read_jobs(self) -> JobsRead | Incomplete[JobsRead]:
        """One cluster: a failed read raises. Several: a cluster whose read fails keeps its
        last jobs, and says why."""
        if not self.several:
            return read_jobs(self.backend, self.progress)
        jobs: list[TrainingJob] = []
        progress: dict[JobKey, JobProgress] = {}
        log_errors: dict[JobKey, str] = {}
        problems: list[str] = []
        for cluster, deck in self.clusters.decks.items():
            try:
                read = read_jobs(deck.backend, self.progress, cluster)
            except Exception as exc:  # the other clusters' jobs are still shown
                problems.append(f"cluster {cluster}: cannot read its jobs: {describe(exc)}")
                read = JobsRead(
                    [j for j in self.jobs if j.cluster == cluster],
                    {k: v for k, v in self.progress.items() if k[0] == cluster},
                    {},
                )
            jobs += read.jobs
            progress |= read.progress
            log_errors |= read.log_errors
        found = JobsRead(jobs, progress, log_errors)
        return Incomplete(found, "; ".join(problems)) if problems else found

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck, self._clusters)
        with Vertical():
            yield Static("Training", id="training-header", markup=False)
            yield self.loader.error_line()
            yield self.permission_check.error_line()
            table: DataTable[Text] = DataTable(id="training-jobs", cursor_type="row")
            columns = list(COLUMNS)
            if self.several:
                columns.insert(1, CLUSTER_COLUMN)
            for label, width in columns:
                table.add_column(label, width=width)
            yield table
            with Horizontal(id="training-detail"):
                yield Static("", id="training-info", markup=False)
                yield PlotextPlot(id="training-plot")
            yield Static("", id="training-notice", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.permission_check.start()
        if self.live is None:
            self.live = self.deck.live  # the deck's snapshot mode holds still
        if self.live:
            for deck in self.clusters.decks.values():
                self.loader.follow(deck.backend.subscribe)
        self.loader.start(every=REFRESH_SECONDS if self.live else None)

    def on_unmount(self) -> None:
        self.loader.stop()

    # -- loading --------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.loader.request()

    def on_loaded(self, message: Loaded[object]) -> None:
        found = message.value
        if isinstance(found, JobsRead):
            self.jobs, self.progress, self.log_errors = found.jobs, found.progress, found.log_errors
            self.gpus = found.gpus or self.gpus
            self._show_jobs()
        elif isinstance(found, ClusterRefusals):
            self.refusals = found.answers
            self.checked = True
            self.refresh_bindings()
            self._show_notice()

    def _show_jobs(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        cursor_key = self._cursor_key()
        now = self.now()
        with self.app.batch_update():
            table.clear()
            for job in self.jobs:
                key = "/".join(part for part in job_key(job) if part)
                cells = job_row(job, self.progress.get(job_key(job)), now)
                if self.several:
                    cells = (cells[0], job.cluster, *cells[1:])
                # Text, never markup, and printable: names and reasons quote the cluster.
                table.add_row(*(Text(printable(cell)) for cell in cells), key=key)
            if cursor_key is not None:
                for index, job in enumerate(self.jobs):
                    if job_key(job) == cursor_key:
                        table.move_cursor(row=index, animate=False)
        self._show_header()
        self._show_detail()

    def _show_header(self) -> None:
        counts = {phase: sum(1 for j in self.jobs if j.phase is phase) for phase in JobPhase}
        sweeps = len({j.sweep for j in self.jobs if j.sweep})
        parts = [f"Training · {len(self.jobs)} jobs"]
        parts += [f"{n} {phase.value.lower()}" for phase, n in counts.items() if n]
        if sweeps:
            parts.append(f"{sweeps} sweeps")
        if self.several:
            per = {name: sum(j.cluster == name for j in self.jobs) for name in self.clusters.decks}
            parts.append(", ".join(f"{name}: {n}" for name, n in per.items()))
            parts += [f"{name}: unavailable" for name in self.clusters.unavailable]
        for cluster, gpus in self.gpus.items():
            said = gpus.describe() if isinstance(gpus, GpuCapacity) else f"GPUs unknown ({gpus})"
            parts.append(f"{cluster}: {said}" if self.several else said)
        self.query_one("#training-header", Static).update(" · ".join(parts))

    def _cursor_key(self) -> JobKey | None:
        job = self.cursor_job
        return job_key(job) if job else None

    @property
    def cursor_job(self) -> TrainingJob | None:
        return item_under_cursor(self.query_one(DataTable), self.jobs)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        if self.several:  # another row may be in another cluster, with other rules
            self.refresh_bindings()

    # -- the job under the cursor ---------------------------------------------------------------
    def _show_detail(self) -> None:
        job = self.cursor_job
        info = self.query_one("#training-info", Static)
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if job is None:
            info.update("no training jobs yet: n launches one")
            plot.refresh()
            self._show_notice()
            return
        progress = self.progress.get(job_key(job)) or JobProgress()
        info.update("\n".join(printable(line) for line in self._describe(job, progress)))
        epochs = [e.number for e in progress.epochs]
        for metric, label in (("loss", "loss"), ("accuracy", "acc"), ("val_accuracy", "val_acc")):
            values = progress.series(metric)
            if values and len(values) == len(epochs):
                plt.plot(epochs, values, label=label, marker="braille")
        name = printable(job.name)
        plt.title(f"{name}: per epoch" if epochs else f"{name}: no epochs yet")
        plt.xlabel("epoch")
        plot.refresh()
        self._show_notice()

    def _describe(self, job: TrainingJob, progress: JobProgress) -> list[str]:
        lines = [
            "/".join(part for part in job_key(job) if part),
            f"{job.phase.value} · {job.gpus} GPU · node {job.node or '-'}",
            f"running {duration(job, self.now())}",
        ]
        if job.kind == "score":
            lines.append(f"scored {format_scored(progress)}")
        else:
            lines.append(f"epoch {format_metrics(progress.last)}")
        if job.pending_reason:
            lines.append(f"pending: {job.pending_reason}")
        log_error = self.log_errors.get(job_key(job))
        if log_error:
            lines.append(f"cannot read its log now ({log_error}): progress as last read")
        if progress.exported is not None:
            exported = progress.exported
            lines.append(f"exported {exported.model} v{exported.version} (d deploy, r roll out)")
        elif progress.published is not None:
            table = progress.published
            lines.append(
                f"published a table of {table.rows:,} keys into {table.model} v{table.version}"
                " (d deploy, r roll out)"
            )
        elif progress.interrupted:
            lines.append(f"stopped by {progress.interrupted}: nothing published")
        elif progress.failed:
            lines.append(f"failed: {progress.failed}")
        return lines

    def _show_notice(self) -> None:
        lines = [printable(self.notice)] if self.notice else []
        refusals = [
            f"{cluster}: {line}" if self.several else line
            for cluster, refused in self.refusals.items()
            for line in refused.lines()
        ]
        if refusals:
            lines.append("not offered: " + "; ".join(refusals))
        self.query_one("#training-notice", Static).update("\n".join(lines))

    # -- permissions ----------------------------------------------------------------------------
    def _read_refusals(self) -> ClusterRefusals:
        """Read-only, then RBAC, in each cluster (asks the API servers: the loader's worker)."""
        answers = {}
        for cluster, deck in self.clusters.decks.items():
            namespace = deck.default_namespace
            answers[cluster] = Refusals(
                train=deck.why_not("train", namespace),
                deploy=deck.why_not("deploy", namespace),
                rollout=deck.why_not("rollout", namespace),
            )
        return ClusterRefusals(answers)

    def _refusals_here(self) -> Refusals:
        """What the cluster of the job under the cursor refuses (the first cluster's if none)."""
        job = self.cursor_job if self.is_mounted else None
        cluster = (
            job.cluster if job is not None and self.several else next(iter(self.clusters.decks))
        )
        return self.refusals.get(cluster, Refusals())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Mutations the user may not do are not offered (the notice line says why)."""
        here = self._refusals_here()
        refused: Mapping[str, str] = {
            "launch": here.train,
            "deploy": here.deploy,
            "rollout": here.rollout,
        }
        return not refused.get(action, "")

    # -- actions --------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def action_launch(self) -> None:
        job = self.cursor_job
        deck = self.deck_of(job)  # in the cursor job's cluster (the where line names it)
        form = TrainForm(
            deck,
            namespace=deck.default_namespace,
            gpus=self.profile.training.gpus,
            model=job.model if job else "",
        )
        self.app.push_screen(form, self._launched)

    def _launched(self, results: list[ActionResult] | None) -> None:
        if results:
            names = ", ".join(r.target for r in results)
            self.notice = f"launched {names}"
            self._show_notice()
            self.action_refresh()

    def _open_logs(self, jobs: list[TrainingJob], title: str) -> None:
        deck = self.deck_of(jobs[0])
        backend = deck.backend
        pods = [pod for job in jobs for pod in backend.job_pods(job.namespace, job.name)]
        if not pods:
            self.notice = f"{title}: no pods yet (the job is waiting to be scheduled)"
            self._show_notice()
            return
        request = LogRequest(pods, jobs[0].namespace, follow=True, tail=LOGS_TAIL)
        self.post_message(OpenLogs(backend, request, title, deck))

    def action_logs(self) -> None:
        job = self.cursor_job
        if job is not None:
            self._open_logs([job], f"job {job.name}")

    def action_sweep_logs(self) -> None:
        job = self.cursor_job
        if job is None:
            return
        if job.sweep is None:
            self.notice = f"{job.name} is not part of a sweep; l opens its logs"
            self._show_notice()
            return
        trials = [
            j
            for j in self.jobs
            if (j.sweep, j.cluster, j.namespace) == (job.sweep, job.cluster, job.namespace)
        ]
        self._open_logs(trials, f"sweep {job.sweep}")

    def _exported(self) -> tuple[TrainingJob, str, int] | None:
        job = self.cursor_job
        if job is None:
            return None
        progress = self.progress.get(job_key(job))
        if progress is not None and progress.published is not None:
            # A scoring job's version now answers keys from its table: that is what to serve.
            return job, progress.published.model, progress.published.version
        if progress is None or progress.exported is None:
            why = "is still running" if job.phase is JobPhase.RUNNING else "exported no version"
            self.notice = f"{job.name} {why}: nothing to deploy yet"
            self._show_notice()
            return None
        return job, progress.exported.model, progress.exported.version

    def action_deploy(self) -> None:
        found = self._exported()
        if found is not None:
            job, model, version = found
            dialog = DeployDialog(self.deck_of(job), model, version, job.namespace)
            self.app.push_screen(dialog, self._released)

    def _released(self, result: ActionResult | None) -> None:
        if result is not None:
            self.notice = f"{result.target}: {result.message}"
            self._show_notice()

    def action_rollout(self) -> None:
        found = self._exported()
        if found is None:
            return
        job, model, version = found
        self._list_deployments(self.deck_of(job), model, version)

    class Deployments(Message):
        def __init__(
            self, deck: DeckContext, model: str, version: int, deployments: list[Any], error: str
        ) -> None:
            super().__init__()
            self.deck = deck  # the job's cluster: the rollout goes there
            self.model, self.version = model, version
            self.deployments = deployments
            self.error = error

    @work(thread=True, group="training-deployments", exit_on_error=False)
    def _list_deployments(self, deck: DeckContext, model: str, version: int) -> None:
        """The rollout's candidates in the job's cluster (a big fleet takes a moment: off the
        event loop)."""
        try:
            found, error = list(deck.backend.deployments()), ""
        except Exception as exc:
            found, error = [], f"cannot list deployments: {exc}"
        self.post_message(self.Deployments(deck, model, version, found, error))

    def on_training_screen_deployments(self, message: Deployments) -> None:
        if not message.deployments:
            self.notice = message.error or "no deployments to roll out; d deploys this version"
            self._show_notice()
            return
        version = message.version

        def chosen(targets: list[Any] | None) -> None:
            if targets:
                self.app.push_screen(RolloutDialog(message.deck, version, targets))

        picker = RolloutPicker(message.model, version, message.deployments)
        self.app.push_screen(picker, chosen)
