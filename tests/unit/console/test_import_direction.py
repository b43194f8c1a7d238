"""Dependencies point one way (DESIGN.md, "Where things live"): read from the source, every
import, also the ones inside functions.

- ``console/core/`` and ``console/views/`` never import Textual nor a front-end (the CLI, the deck).
- Nothing outside ``console/backends/kubernetes/`` imports from it: front-ends ask a backend
  for a capability (``console.backends.base``, with isinstance).
- No deck screen imports another screen: screens ask for one with a message
  (``console/tui/messages.py``) and the app, the router, opens it.
- The console imports from ``training`` only ``training.params`` (no numpy, no TensorFlow);
  ``training`` never imports the console.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
KUBERNETES = "console.backends.kubernetes"
# The factory that opens the profile's backend names the implementation it opens: by design.
FACTORY = "console/backends/__init__.py"
# Known violations, to be removed by issue 16 (console/ as one house); this list only shrinks.
KNOWN_KUBERNETES_IMPORTS: set[tuple[str, str]] = set()


def imports(path: Path, package: str | None = None) -> Iterator[str]:
    """Every module ``path`` imports (``from a import b`` yields ``a`` and ``a.b``); relative
    imports are resolved against ``package`` (default: where ``path`` is in the checkout)."""
    tree = ast.parse(path.read_text(), str(path))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the file's package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("room", ["console/core", "console/views"])
def test_the_core_and_the_view_models_import_neither_textual_nor_a_front_end(room: str) -> None:
    forbidden = ("textual", "textual_plotext", "rich", "console.tui", "console.cli")
    found = [
        (name(path), module)
        for path in sources(room)
        for module in imports(path)
        if any(within(module, package) for package in forbidden)
    ]
    assert sources(room), f"{room}/ has modules"
    assert found == []


def test_nothing_outside_the_kubernetes_backend_imports_it() -> None:
    found = {
        (name(path), module)
        for path in sources("console")
        if not within(".".join(path.relative_to(ROOT).with_suffix("").parts), KUBERNETES)
        and name(path) != FACTORY
        for module in imports(path)
        if within(module, KUBERNETES)
    }

    def allowed(path: str, module: str, known: tuple[str, str]) -> bool:
        return path == known[0] and within(module, known[1])

    # Only entries of the allow-list, and each of them still there (else: shrink the list).
    unexpected = {f for f in found if not any(allowed(*f, k) for k in KNOWN_KUBERNETES_IMPORTS)}
    assert unexpected == set()
    stale = {k for k in KNOWN_KUBERNETES_IMPORTS if not any(allowed(*f, k) for f in found)}
    assert stale == set()


def test_no_screen_imports_another_screen() -> None:
    screens = "console.tui.screens"
    found = {
        (name(path), module)
        for path in sources("console/tui/screens")
        for module in imports(path)
        if within(module, screens)
        and module != screens  # `from console.tui.screens import x` yields the package too
        and not within(module, ".".join(path.relative_to(ROOT).with_suffix("").parts))
    }
    assert sources("console/tui/screens"), "console/tui/screens/ has modules"
    assert found == set()


def test_the_console_imports_only_training_params_and_training_never_the_console() -> None:
    console_uses = {
        (name(path), module)
        for path in sources("console")
        for module in imports(path)
        if within(module, "training") and not within(module, "training.params")
    }
    assert console_uses == set()
    training_uses = {
        (name(path), module)
        for path in sources("training")
        for module in imports(path)
        if within(module, "console")
    }
    assert training_uses == set()


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from . import guard\n"
        "def f() -> None:\n"
        "    from textual.app import App\n"
        "    import console.backends.kubernetes.autoscale\n"
    )
    found = set(imports(probe, "console.core"))
    assert {"console.core", "console.core.guard", "textual.app", KUBERNETES + ".autoscale"} <= found


def test_autoscaling_is_a_capability_both_backends_have() -> None:
    from console.backends.base import Autoscaling, BackendError
    from console.backends.kubernetes.backend import KubernetesBackend
    from console.backends.kubernetes.templates import TemplateError
    from console.backends.local import LocalBackend, LocalError

    assert issubclass(KubernetesBackend, Autoscaling)
    assert issubclass(LocalBackend, Autoscaling)  # the agent's own autoscaler (issue 20)
    # The CLI catches one error type for every backend.
    assert issubclass(TemplateError, BackendError)
    assert issubclass(LocalError, BackendError)
