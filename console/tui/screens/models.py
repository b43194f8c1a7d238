"""The Models screen: every version in the profile's model store with its manifest (accuracy,
int8 delta, size, created, the training run that made it, the precomputed table it carries)
and how many deployments serve it; deploy a version, or roll a selection of deployments out to
it.

The store (a folder or HDFS) is read through the screen's live loader (a thread worker; a failed
read is shown and retried); the table is rebuilt in one update that keeps the cursor on the same
version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from console.model import ActionResult, ModelDeployment
from console.profile import Profile
from console.tui.context import DeckContext, SessionScreen
from console.tui.loader import Incomplete, LiveLoader, Loaded
from console.tui.widgets.cursor import item_under_cursor
from console.tui.widgets.release import DeployDialog, RolloutDialog, RolloutPicker
from console.tui.widgets.where_line import WhereLine
from console.views.format import printable
from serving.manifest import Manifest, TableInfo

# Fixed widths: stable columns while rows come and go.
COLUMNS = (
    ("MODEL", 14),
    ("VERSION", 7),
    ("ACCURACY", 8),
    ("INT8 Δ", 7),
    ("SIZE", 8),
    ("CREATED", 16),
    ("TRAINED BY", 32),
    ("SERVING", 7),
    ("RUNTIME", 11),
    ("TABLE", 22),  # the precomputed table: rows and size
)


@dataclass(frozen=True)
class VersionRow:
    model: str
    version: int
    manifest: Manifest | None  # None: unreadable or refused, ``error`` says why
    serving: int  # deployments at this version
    error: str = ""  # why the manifest could not be read (printable)

    @property
    def key(self) -> str:
        return f"{self.model}/{self.version}"


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def metric_text(value: object, signed: bool = False) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def trained_by(manifest: Manifest) -> str:
    """The run (a Kubernetes job's name) that trained it; a sweep's trial says which."""
    training = manifest.training
    run = str(training.get("run_id") or training.get("run") or "-")
    if "sweep" in training:
        return f"{run} ({training['sweep']}#{training.get('trial')})"
    return run


def table_size(manifest: Manifest, table: TableInfo) -> int:
    """Bytes of the table's files, as the manifest lists them (what a predictor fetches)."""
    prefix = table.path + "/"
    return sum(e.size for path, e in manifest.files.items() if path.startswith(prefix))


def table_text(manifest: Manifest) -> str:
    """``"1,797 rows 70.2 KiB"``, or "-" without a table.

    Rows only, no coverage percentage: the scoring job scores every key of its input (it
    refuses duplicates), so the manifest's rows are the input's keys at scoring time and there
    is no larger key set on record to divide by."""
    table = manifest.precomputed
    if table is None:
        return "-"
    return f"{table.rows:,} rows {size_text(table_size(manifest, table))}"


def model_size(manifest: Manifest) -> int:
    """The model's files; a precomputed table has its own column."""
    table = manifest.precomputed
    prefix = table.path + "/" if table else None
    return sum(
        e.size
        for path, e in manifest.files.items()
        if prefix is None or not path.startswith(prefix)
    )


def version_cells(row: VersionRow) -> tuple[Text, ...]:
    """The row's cells as Text, never markup, each printable: a shared store's manifest (and
    folder names) may hold '[' or escape sequences."""
    manifest = row.manifest
    serving = str(row.serving) if row.serving else "-"
    if manifest is None:
        blank = ("-",) * 4
        cells = (row.model, str(row.version), *blank, f"unreadable: {row.error}", serving, "-", "-")
    else:
        cells = (
            row.model,
            str(row.version),
            metric_text(manifest.metrics.get("accuracy")),
            metric_text(manifest.metrics.get("int8_accuracy_delta"), signed=True),
            size_text(model_size(manifest)),
            manifest.created.replace("T", " ").removesuffix("Z")[:16] or "-",
            trained_by(manifest),
            serving,
            manifest.default_runtime or "-",
            table_text(manifest),
        )
    return tuple(Text(printable(cell)) for cell in cells)


def read_store(root: str, deployments: list[ModelDeployment]) -> list[VersionRow]:
    """Every version of every model, newest version first within a model (blocking). A version
    whose manifest cannot be read or is refused (a hostile path, bad JSON) is a row with its
    error: one team's bad version must not hide the store from every other team."""
    from serving.store import ModelStore, StoreError

    store = ModelStore(root)
    serving: dict[tuple[str, str], int] = {}
    for deployment in deployments:
        key = (deployment.model, deployment.version)
        serving[key] = serving.get(key, 0) + 1
    rows = []
    for model in sorted(store.models()):
        for version in sorted(store.versions(model), reverse=True):
            count = serving.get((model, str(version)), 0)
            try:
                manifest = store.manifest(model, version)
            except (StoreError, OSError) as exc:
                rows.append(VersionRow(model, version, None, count, printable(exc)))
                continue
            rows.append(VersionRow(model, version, manifest, count))
    return rows


@dataclass(frozen=True)
class StoreRead:
    rows: list[VersionRow]
    deployments: list[ModelDeployment]


def read_models(backend: Any, root: str) -> StoreRead | Incomplete[StoreRead]:
    """The store's versions and who serves them (blocking: from a worker). Deployments that
    cannot be listed leave the store shown with an empty serving column (Incomplete: the loader
    says why and tries again); a store that cannot be read raises."""
    try:
        deployments, error = list(backend.deployments()), ""
    except Exception as exc:
        deployments, error = [], f"cannot list deployments: {type(exc).__name__}: {exc}"
    read = StoreRead(read_store(root, deployments), deployments)
    return Incomplete(read, error) if error else read


class ModelsScreen(SessionScreen):
    DEFAULT_CSS = """
    ModelsScreen #models-header { height: 1; background: $panel; padding: 0 1; }
    ModelsScreen DataTable { height: 1fr; min-height: 5; }
    ModelsScreen #models-detail { height: auto; max-height: 8; padding: 0 1; }
    ModelsScreen #models-notice { height: auto; max-height: 2; color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="models.back"),
        Binding("d", "deploy", "Deploy version", id="models.deploy"),
        Binding("r", "rollout", "Roll out to it", id="models.rollout"),
        Binding("ctrl+r", "refresh", "Refresh", id="models.refresh"),
        Binding("j", "cursor_down", "Down", show=False, id="models.cursor_down"),
        Binding("k", "cursor_up", "Up", show=False, id="models.cursor_up"),
    ]

    def __init__(self, backend: Any, profile: Profile, *, deck: DeckContext | None = None) -> None:
        super().__init__(backend, profile, deck)
        self.rows: list[VersionRow] = []
        self.deployments: list[ModelDeployment] = []
        self.refusals: Mapping[str, str] = {}  # action → why it is not offered
        self.notice = ""
        self.checked = False  # the permission check has answered
        self.loader = LiveLoader(
            self,
            lambda: read_models(backend, profile.store.root),
            name="models",
            what=f"the store {profile.store.root}",
        )
        self.permission_check = LiveLoader(
            self, self._read_refusals, name="models-permissions", what="what you may do here"
        )

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
        with Vertical():
            yield Static("Models", id="models-header", markup=False)
            yield self.loader.error_line()
            yield self.permission_check.error_line()
            table: DataTable[Text] = DataTable(id="models-versions", cursor_type="row")
            for label, width in COLUMNS:
                table.add_column(label, width=width)
            yield table
            yield Static("", id="models-detail", markup=False)
            yield Static("", id="models-notice", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.permission_check.start()
        self.loader.start()

    # -- loading --------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.loader.request()

    def on_loaded(self, message: Loaded[object]) -> None:
        found = message.value
        if isinstance(found, StoreRead):
            self._show_versions(found)
        elif isinstance(found, Mapping):  # the permission check
            self.refusals = found
            self.checked = True
            self.refresh_bindings()
            self._show_notice()

    def _show_versions(self, read: StoreRead) -> None:
        cursor = self.cursor_row
        self.rows, self.deployments = read.rows, read.deployments
        table: DataTable[Text] = self.query_one(DataTable)
        with self.app.batch_update():
            table.clear()
            for row in self.rows:
                table.add_row(*version_cells(row), key=row.key)
            if cursor is not None:
                for index, row in enumerate(self.rows):
                    if row.key == cursor.key:
                        table.move_cursor(row=index, animate=False)
        models = len({r.model for r in self.rows})
        counts = f"{models} model{'s' * (models != 1)}, {len(self.rows)} versions"
        unreadable = sum(1 for r in self.rows if r.manifest is None)
        if unreadable:
            counts += f" ({unreadable} unreadable)"
        header = f"Models · {counts} · {printable(self.profile.store.root)}"
        self.query_one("#models-header", Static).update(header)
        self._show_detail()

    @property
    def cursor_row(self) -> VersionRow | None:
        return item_under_cursor(self.query_one(DataTable), self.rows)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.cursor_row
        detail = self.query_one("#models-detail", Static)
        if row is None:
            detail.update("the store has no models yet: train one (:jobs, then n)")
        elif row.manifest is None:
            detail.update(
                printable(f"{row.model} v{row.version}")
                + f" · unreadable, not offered for deploy: {row.error}"
            )
        else:
            manifest = row.manifest
            metrics = ", ".join(
                f"{k} {metric_text(v)}" for k, v in sorted(manifest.metrics.items())
            )
            params = manifest.training.get("params") or {}
            serving = [
                f"{d.namespace}/{d.name}"
                for d in self.deployments
                if d.model == row.model and d.version == str(row.version)
            ]
            lines = [
                f"{row.model} v{row.version} · runtimes {', '.join(manifest.runtimes()) or '-'}"
                f" · {len(manifest.labels)} labels",
                f"metrics: {metrics or '-'}",
                f"trained by {trained_by(manifest)}: data {manifest.training.get('data', '-')}, "
                f"epochs {manifest.training.get('epochs', '-')}, params {params or '-'}",
                f"serving: {', '.join(serving) if serving else 'no deployment'}",
            ]
            table = manifest.precomputed
            if table is not None:
                details = table.details
                lines.append(
                    f"precomputed: {table_text(manifest)}, the keys of "
                    f"{details.get('source', '-')} scored by {details.get('job', '-')} "
                    f"({details.get('runtime', '-')}, {details.get('created', '-')})"
                )
            # printable per line: the manifest is another team's text
            detail.update("\n".join(printable(line) for line in lines))
        self._show_notice()

    def _show_notice(self) -> None:
        lines = [printable(self.notice)] if self.notice else []
        named = (("deploy", "deploy"), ("rollout", "roll out"))
        refused = [f"{word}: {self.refusals[k]}" for k, word in named if self.refusals.get(k)]
        if refused:
            lines.append("not offered: " + "; ".join(refused))
        self.query_one("#models-notice", Static).update("\n".join(lines))

    # -- permissions ----------------------------------------------------------------------------
    def _read_refusals(self) -> Mapping[str, str]:
        """Read-only, then RBAC (asks the API server: from the loader's worker)."""
        deck, namespace = self.deck, self.namespace
        return {action: deck.why_not(action, namespace) for action in ("deploy", "rollout")}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not self.refusals.get(action, "")

    # -- actions --------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def _readable(self, row: VersionRow) -> bool:
        """True, or say on the notice line why this version is not offered."""
        if row.manifest is not None:
            return True
        self.notice = f"{row.model} v{row.version}: unreadable, not offered: {row.error}"
        self._show_notice()
        return False

    def action_deploy(self) -> None:
        row = self.cursor_row
        if row is not None and self._readable(row):
            dialog = DeployDialog(self.deck, row.model, row.version, self.namespace)
            self.app.push_screen(dialog, self._deployed)

    def _deployed(self, result: ActionResult | None) -> None:
        if result is not None:
            self.notice = f"{result.target}: {result.message}"
            self.action_refresh()
            self._show_notice()

    def action_rollout(self) -> None:
        row = self.cursor_row
        if row is None or not self._readable(row):
            return
        if not self.deployments:
            self.notice = "no deployments to roll out; d deploys this version"
            self._show_notice()
            return
        version = row.version

        def done(results: list[ActionResult] | None) -> None:
            if results:
                ok = sum(1 for r in results if r.ok)
                self.notice = f"rollout to {row.model} v{version}: {ok} of {len(results)} ok"
                self.action_refresh()
                self._show_notice()

        def chosen(targets: list[ModelDeployment] | None) -> None:
            if targets:
                self.app.push_screen(RolloutDialog(self.deck, version, targets), done)

        self.app.push_screen(RolloutPicker(row.model, version, self.deployments), chosen)
