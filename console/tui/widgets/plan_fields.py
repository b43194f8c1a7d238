"""The action dialog's plan fields: a rollout (or rollback) on several targets, in waves.

Each field is read with the batch engine's own parsers (``settings_from``, ``thresholds_from``),
so the dialog refuses exactly what ``fleetdeck rollout --waves ...`` refuses, with the same
words; the error shows under the field it is about. An empty waves field means "no waves": the
dialog then sends the action to every target at once, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from console.batch.plan import ON_FAILURE, SloThresholds, settings_from, thresholds_from
from console.profile import BatchSettings, Profile

# field id, label, placeholder
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("waves", "waves", "e.g. 1,10%,100% (empty: all at once)"),
    ("max-parallel", "max parallel", "requests in flight"),
    ("halt-after", "halt after", "failed targets: 3 or 5%"),
    ("bake", "bake seconds", "watch each wave this long"),
    ("p99-ratio", "SLO p99 ×", "p99 may grow to R × baseline"),
    ("error-percent", "SLO error %", "errors may rise by this many points"),
)


@dataclass(frozen=True)
class PlanChoice:
    """What the operator asked for: the engine's settings and gates."""

    settings: BatchSettings
    slo: SloThresholds


def defaults(profile: Profile) -> dict[str, str]:
    """The fields as the profile's ``[batch]`` and ``[slo]`` fill them."""
    batch = profile.batch
    slo = SloThresholds.from_profile(profile.slo)
    return {
        "waves": ",".join(str(w) for w in batch.waves),
        "max-parallel": str(batch.max_parallel),
        "halt-after": str(batch.halt_after),
        "bake": f"{batch.bake_seconds:g}",
        "p99-ratio": "" if slo.p99_ratio is None else f"{slo.p99_ratio:g}",
        "error-percent": "" if slo.error_percent is None else f"{slo.error_percent:g}",
        "on-failure": batch.on_failure,
    }


def _number(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what}: a number, e.g. 1.5") from None


def _whole(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what}: a whole number, e.g. 10") from None


def read_plan(profile: Profile, texts: Mapping[str, str]) -> PlanChoice | dict[str, str]:
    """The plan the fields describe, or the error text of each field that is wrong.

    An empty field takes the profile's value (the waves field excepted: the caller treats an
    empty one as "no waves"). Each field goes through ``settings_from`` on its own first, so an
    error lands under the field it is about.
    """
    errors: dict[str, str] = {}

    def attempt(field: str, read: Callable[[], object]) -> None:
        try:
            read()
        except ValueError as exc:
            errors[field] = str(exc)

    def text(field: str) -> str | None:
        return texts.get(field, "").strip() or None

    waves, halt_after, on_failure = text("waves"), text("halt-after"), text("on-failure")
    max_parallel: int | None = None
    bake: float | None = None
    p99_ratio: float | None = None
    error_percent: float | None = None
    try:
        max_parallel = _whole(texts.get("max-parallel", ""), "max parallel")
    except ValueError as exc:
        errors["max-parallel"] = str(exc)
    try:
        bake = _number(texts.get("bake", ""), "bake seconds")
    except ValueError as exc:
        errors["bake"] = str(exc)
    try:
        p99_ratio = _number(texts.get("p99-ratio", ""), "SLO p99 ratio")
    except ValueError as exc:
        errors["p99-ratio"] = str(exc)
    try:
        error_percent = _number(texts.get("error-percent", ""), "SLO error %")
    except ValueError as exc:
        errors["error-percent"] = str(exc)
    if max_parallel is not None and max_parallel < 1:
        errors["max-parallel"] = "max parallel: at least 1"
    if bake is not None and bake < 0:
        errors["bake"] = "bake seconds: 0 or more"
    attempt("waves", lambda: settings_from(profile, waves=waves))
    attempt("halt-after", lambda: settings_from(profile, halt_after=halt_after))
    attempt("on-failure", lambda: settings_from(profile, on_failure=on_failure))
    attempt("p99-ratio", lambda: thresholds_from(profile, p99_ratio=p99_ratio))
    attempt("error-percent", lambda: thresholds_from(profile, error_percent=error_percent))
    if errors:
        return errors
    settings = settings_from(
        profile,
        waves=waves,
        max_parallel=max_parallel,
        halt_after=halt_after,
        bake=bake,
        on_failure=on_failure,
    )
    slo = thresholds_from(profile, p99_ratio=p99_ratio, error_percent=error_percent)
    return PlanChoice(settings, slo)


class PlanFields(Vertical):
    """One line per field (label + input), an error line under a field that is wrong."""

    DEFAULT_CSS: ClassVar[str] = """
    PlanFields { height: auto; }
    PlanFields .plan-field { height: 1; }
    PlanFields .plan-field Label { width: 14; }
    PlanFields .plan-field Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    PlanFields .plan-field Input:focus { background: $boost; }
    PlanFields .plan-field Select { width: 1fr; height: 1; }
    PlanFields .plan-field SelectCurrent { height: 1; border: none; padding: 0 1; }
    PlanFields .plan-error { height: auto; color: $error; padding-left: 14; }
    """

    def __init__(self, profile: Profile, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.profile = profile

    def compose(self) -> ComposeResult:
        filled = defaults(self.profile)
        for field, label, placeholder in FIELDS:
            with Horizontal(classes="plan-field"):
                yield Label(label)
                yield Input(filled[field], placeholder=placeholder, id=f"plan-{field}")
            yield Static("", id=f"plan-{field}-error", classes="plan-error")
        with Horizontal(classes="plan-field"):
            yield Label("on failure")
            yield Select(
                [(choice, choice) for choice in ON_FAILURE],
                value=filled["on-failure"],
                allow_blank=False,
                id="plan-on-failure",
                compact=True,
            )
        yield Static("", id="plan-on-failure-error", classes="plan-error")

    def on_mount(self) -> None:
        for error in self.query(".plan-error"):
            error.display = False

    def texts(self) -> dict[str, str]:
        found = {field: self.query_one(f"#plan-{field}", Input).value for field, _, _ in FIELDS}
        found["on-failure"] = str(self.query_one("#plan-on-failure", Select).value)
        return found

    def in_waves(self) -> bool:
        return bool(self.query_one("#plan-waves", Input).value.strip())

    def choice(self) -> PlanChoice | None:
        """The plan, or None after showing each wrong field's error under it."""
        found = read_plan(self.profile, self.texts())
        errors = found if isinstance(found, dict) else {}
        for field in [*(f for f, _, _ in FIELDS), "on-failure"]:
            line = self.query_one(f"#plan-{field}-error", Static)
            line.update(errors.get(field, ""))
            line.display = field in errors
        return None if isinstance(found, dict) else found
