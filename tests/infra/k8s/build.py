"""Build the control plane binaries from Go modules, once per machine, atomically.

Each component is built into a ``bin.partial-<pid>`` folder next to its final ``bin`` folder and
renamed into place only when every binary of it linked, so an interrupted build is never taken
for a finished one. The Go module and build caches live under the fleetdeck cache root too, so a
fresh clone (CI) on the same machine reuses them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .layout import (
    ETCD_VERSION,
    KEDA_COMMANDS,
    KEDA_VERSION,
    KUBE_COMMANDS,
    KUBE_VERSION,
    KWOK_COMMANDS,
    KWOK_VERSION,
    METRICS_SERVER_COMMANDS,
    METRICS_SERVER_VERSION,
    Layout,
)

HEARTBEAT_SECONDS = 30.0


class BuildError(RuntimeError):
    """A build step failed; the message is one line a person can act on."""


def say(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def find_go() -> str:
    """The ``go`` command: on PATH, or the standard /usr/local/go install."""
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(found, os.X_OK):
        raise BuildError("Go toolchain not found (need go >= 1.26 on PATH or /usr/local/go)")
    return found


def go_env(layout: Layout) -> dict[str, str]:
    """Environment for every go command: caches under our root, no cgo, no toolchain switch."""
    env = dict(os.environ)
    env.update(
        GOPATH=str(layout.go_dir / "path"),
        GOMODCACHE=str(layout.go_dir / "mod"),
        GOCACHE=str(layout.go_dir / "build"),
        CGO_ENABLED="0",
        # A go.mod asking for a newer Go must fail here, not download a toolchain.
        GOTOOLCHAIN="local",
        # -modcacherw: the module cache stays deletable with a plain `rm -rf`.
        GOFLAGS="-buildvcs=false -modcacherw",
    )
    return env


def run_logged(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path, what: str) -> str:
    """Run ``cmd`` with output to ``log``, printing a heartbeat; return stdout on success."""
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            say(f"  ... still {what} ({time.monotonic() - started:.0f}s)")

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        with log.open("a") as err:
            err.write(f"\n$ {' '.join(cmd)}\n")
            err.flush()
            result = subprocess.run(
                list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True
            )
    finally:
        done.set()
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        detail = "\n".join(tail)
        raise BuildError(f"{what} failed (exit {result.returncode}); see {log}:\n{detail}")
    return result.stdout


@contextmanager
def build_lock(layout: Layout) -> Iterator[None]:
    """One build at a time per machine: a second caller waits, then finds the work done."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with (layout.root / "build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_built(bin_dir: Path, commands: Sequence[str]) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in commands)


@contextmanager
def staging_bin(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final`` that is renamed onto it only if the block succeeds."""
    partial = final.with_name(f"bin.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def upstream_gomod(go: str, env: dict[str, str], module: str, log: Path) -> str:
    """The text of ``module``'s own go.mod, fetched through the module proxy."""
    out = run_logged(
        [go, "mod", "download", "-json", module],
        cwd=log.parent,
        env=env,
        log=log,
        what=f"downloading {module}",
    )
    match = re.search(r'"GoMod":\s*"([^"]+)"', out)
    if not match:
        raise BuildError(f"go mod download gave no go.mod path for {module}")
    return Path(match.group(1)).read_text()


def header_lines(gomod: str) -> list[str]:
    """The ``go`` and ``godebug`` lines: godebug only applies in the main module, so copy it."""
    keep = re.compile(r"^(go|godebug)\s")
    return [line for line in gomod.splitlines() if keep.match(line)]


STAGING_REPLACE = re.compile(r"^(\s*(?:replace\s+)?)(k8s\.io/\S+)\s+=>\s+\./staging/\S+\s*$")


def kube_wrapper_gomod(upstream: str, version: str) -> str:
    """Kubernetes' go.mod as a wrapper: staging ``./staging/...`` replaced by published v0.x.y.

    The staging modules are published as ``v0.<minor>.<patch>`` for Kubernetes
    ``v1.<minor>.<patch>``; a module download lacks the ./staging folders, hence the rewrite.
    """
    staging_version = "v0." + version.removeprefix("v1.")
    lines = []
    for line in upstream.splitlines():
        if line.startswith("module "):
            line = "module fleetdeck.test/k8s-build"
        else:
            line = STAGING_REPLACE.sub(rf"\1\2 => \2 {staging_version}", line)
        lines.append(line)
    lines.append(f"\nrequire k8s.io/kubernetes {version}\n")
    return "\n".join(lines)


def tools_go(packages: Sequence[str]) -> str:
    """A build-tagged file importing the main packages, so ``go mod tidy`` records their deps."""
    imports = "\n".join(f'\t_ "{pkg}"' for pkg in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def write_wrapper(src: Path, gomod: str, packages: Sequence[str]) -> None:
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    (src / "go.mod").write_text(gomod)
    (src / "tools.go").write_text(tools_go(packages))


def kube_ldflags(version: str) -> str:
    """Stamp the version: unstamped binaries say v0.0.0-master, which KWOK cannot place."""
    minor = version.split(".")[1]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            "-s -w",
        ]
    )


def go_build(
    go: str,
    env: dict[str, str],
    src: Path,
    out: Path,
    package: str,
    ldflags: str,
    log: Path,
    name: str = "",
) -> None:
    """``package`` built into ``out``, named ``name`` (default: the package's last part)."""
    name = name or package.rstrip("/").split("/")[-1]
    run_logged(
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / name), package],
        cwd=src,
        env=env,
        log=log,
        what=f"building {name}",
    )


def build_kube(layout: Layout, go: str, env: dict[str, str], log: Path) -> None:
    final = layout.kube_bin
    if is_built(final, KUBE_COMMANDS):
        return
    say(f"building Kubernetes {KUBE_VERSION} (first run only: about 10 minutes on 2 cores)")
    src = layout.src_dir("k8s", KUBE_VERSION)
    src.mkdir(parents=True, exist_ok=True)
    upstream = upstream_gomod(go, env, f"k8s.io/kubernetes@{KUBE_VERSION}", log)
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS]
    write_wrapper(src, kube_wrapper_gomod(upstream, KUBE_VERSION), packages)
    say("  resolving modules (go mod tidy)")
    run_logged([go, "mod", "tidy"], cwd=src, env=env, log=log, what="resolving modules")
    with staging_bin(final) as out:
        for index, package in enumerate(packages, 1):
            say(f"  [{index}/{len(packages)}] {package.split('/')[-1]}")
            go_build(go, env, src, out, package, kube_ldflags(KUBE_VERSION), log)


def build_etcd(layout: Layout, go: str, env: dict[str, str], log: Path) -> None:
    final = layout.etcd_bin
    if is_built(final, ["etcd"]):
        return
    say(f"building etcd {ETCD_VERSION}")
    module = "go.etcd.io/etcd/server/v3"
    src = layout.src_dir("etcd", ETCD_VERSION)
    src.mkdir(parents=True, exist_ok=True)
    upstream = upstream_gomod(go, env, f"{module}@{ETCD_VERSION}", log)
    gomod = "\n".join(
        [
            "module fleetdeck.test/etcd-build",
            "",
            *header_lines(upstream),
            "",
            f"require {module} {ETCD_VERSION}",
            "",
        ]
    )
    write_wrapper(src, gomod, [module])
    run_logged([go, "mod", "tidy"], cwd=src, env=env, log=log, what="resolving etcd modules")
    with staging_bin(final) as out:
        run_logged(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), module],
            cwd=src,
            env=env,
            log=log,
            what="building etcd",
        )


def build_kwok(layout: Layout, go: str, env: dict[str, str], log: Path) -> None:
    final = layout.kwok_bin
    if is_built(final, KWOK_COMMANDS):
        return
    say(f"building KWOK {KWOK_VERSION}")
    with staging_bin(final) as out:
        # KWOK's go.mod has no replace directives, so a plain `go install pkg@version` works.
        packages = [f"sigs.k8s.io/kwok/cmd/{name}@{KWOK_VERSION}" for name in KWOK_COMMANDS]
        run_logged(
            [go, "install", "-trimpath", "-ldflags", "-s -w", *packages],
            cwd=layout.root,
            env={**env, "GOBIN": str(out)},
            log=log,
            what="building kwok and kwokctl",
        )


def module_wrapper_gomod(upstream: str, name: str, module: str, version: str) -> str:
    """A program module's own go.mod as a wrapper that requires it.

    Its requirements stay (the versions it is released with), and so do its ``replace``,
    ``exclude`` and ``godebug`` lines, which only apply in the main module (KEDA replaces one
    module it depends on). Only the module line changes.
    """
    lines = [
        f"module fleetdeck.test/{name}-build" if line.startswith("module ") else line
        for line in upstream.splitlines()
    ]
    lines.append(f"\nrequire {module} {version}\n")
    return "\n".join(lines)


def build_program_module(
    layout: Layout,
    go: str,
    env: dict[str, str],
    log: Path,
    *,
    component: str,
    module: str,
    version: str,
    packages: dict[str, str],
    ldflags: str,
) -> None:
    """Build ``packages`` (binary name -> main package) of ``module@version`` into the
    component's bin folder, through a wrapper module (as for Kubernetes), atomically."""
    final = layout.bin_dir(component, version)
    if is_built(final, list(packages)):
        return
    src = layout.src_dir(component, version)
    src.mkdir(parents=True, exist_ok=True)
    upstream = upstream_gomod(go, env, f"{module}@{version}", log)
    write_wrapper(
        src, module_wrapper_gomod(upstream, component, module, version), list(packages.values())
    )
    say(f"  resolving {component} modules (go mod tidy)")
    run_logged(
        [go, "mod", "tidy"], cwd=src, env=env, log=log, what=f"resolving {component} modules"
    )
    with staging_bin(final) as out:
        for index, (name, package) in enumerate(packages.items(), 1):
            say(f"  [{index}/{len(packages)}] {name}")
            go_build(go, env, src, out, package, ldflags, log, name)


def build_metrics_server(layout: Layout, go: str, env: dict[str, str], log: Path) -> None:
    if is_built(layout.metrics_server_bin, METRICS_SERVER_COMMANDS):
        return
    say(f"building metrics-server {METRICS_SERVER_VERSION}")
    # Stamped as its Makefile does (the client-go version package), so --version says v0.8.0.
    stamp = f"-X k8s.io/client-go/pkg/version.gitVersion={METRICS_SERVER_VERSION}"
    build_program_module(
        layout,
        go,
        env,
        log,
        component="metrics-server",
        module="sigs.k8s.io/metrics-server",
        version=METRICS_SERVER_VERSION,
        packages={"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ldflags=f"{stamp} -s -w",
    )


def build_keda(layout: Layout, go: str, env: dict[str, str], log: Path) -> None:
    if is_built(layout.keda_bin, KEDA_COMMANDS):
        return
    say(f"building KEDA {KEDA_VERSION} (first run only: many modules, 20 minutes or more)")
    module = "github.com/kedacore/keda/v2"
    build_program_module(
        layout,
        go,
        env,
        log,
        component="keda",
        module=module,
        version=KEDA_VERSION,
        # The operator (ScaledObject controller, scalers, gRPC metrics service) and the
        # external-metrics adapter; the admission webhooks are not needed.
        packages={
            "keda-operator": f"{module}/cmd/operator",
            "keda-adapter": f"{module}/cmd/adapter",
        },
        ldflags=f"-X {module}/version.Version={KEDA_VERSION} -s -w",
    )


def is_everything_built(layout: Layout) -> bool:
    return (
        is_built(layout.kube_bin, KUBE_COMMANDS)
        and is_built(layout.etcd_bin, ["etcd"])
        and is_built(layout.kwok_bin, KWOK_COMMANDS)
    )


def is_autoscaling_built(layout: Layout) -> bool:
    return is_built(layout.metrics_server_bin, METRICS_SERVER_COMMANDS) and is_built(
        layout.keda_bin, KEDA_COMMANDS
    )


def ensure_built(layout: Layout) -> None:
    """Build whatever the cluster needs and is missing; a no-op (no Go needed) when the cache
    is complete."""
    if is_everything_built(layout):
        return
    go = find_go()
    with build_lock(layout):
        env = go_env(layout)
        log = layout.root / "build.log"
        started = time.monotonic()
        build_kwok(layout, go, env, log)
        build_etcd(layout, go, env, log)
        build_kube(layout, go, env, log)
        say(f"build complete in {time.monotonic() - started:.0f}s (log: {log})")


def ensure_autoscaling_built(layout: Layout) -> None:
    """Build metrics-server and KEDA if missing (cached like the rest, same lock and caches)."""
    if is_autoscaling_built(layout):
        return
    go = find_go()
    with build_lock(layout):
        env = go_env(layout)
        log = layout.root / "build.log"
        started = time.monotonic()
        build_metrics_server(layout, go, env, log)
        build_keda(layout, go, env, log)
        say(f"autoscaling build complete in {time.monotonic() - started:.0f}s (log: {log})")
