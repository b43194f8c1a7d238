"""Another user of the machine (uid 65534, ``nobody``), as a second person on a shared bastion:
commands and Python snippets run through ``setpriv`` by a root test process.

The snippets run in the system's Python with the standard library only (``-I``: nothing from
the environment or the working folder): the other user has no access to our virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.infra.require import missing_infra

OTHER_UID = 65534
SYSTEM_PYTHON = "/usr/bin/python3"


def as_other_user(command: Sequence[str]) -> list[str]:
    """``command`` as uid/gid 65534 with no supplementary groups."""
    setpriv = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"]
    return [*setpriv, *command]


def require_other_user() -> None:
    """Skip (a developer's machine) or fail (CI) unless this process can become another user
    (root, setpriv, a system Python)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        missing_infra("root and setpriv, to act as another user (uid 65534)")
    if not Path(SYSTEM_PYTHON).exists():
        missing_infra(f"{SYSTEM_PYTHON}, for the other user's snippets")


def run_python(snippet: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``snippet`` (``sys.argv[1:]`` = ``args``) as the other user, from ``/``."""
    return subprocess.run(
        as_other_user([SYSTEM_PYTHON, "-I", "-c", snippet, *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


def start_python(snippet: str, *args: str) -> subprocess.Popen[str]:
    """Start ``snippet`` as the other user; its stdout is a pipe (say when it is ready)."""
    return subprocess.Popen(
        as_other_user([SYSTEM_PYTHON, "-I", "-u", "-c", snippet, *args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )


def open_the_way(folder: Path, *, below: Path = Path("/tmp")) -> None:
    """Make ``folder`` and its parents up to ``below`` (exclusive) traversable by everyone
    (0755), as a home folder usually is: pytest's own 0700 temporary folders would otherwise
    stop the other user before our protection is ever tried."""
    for path in [folder, *folder.parents]:
        if path == below or below not in path.parents:
            return
        path.chmod(0o755)
