"""Where one profile's agent keeps its files: ``${XDG_STATE_HOME:-~/.local/state}/fleetdeck/
local/<profile>/`` holds the lock, the agent's socket and file, the SQLite state and the logs.

That folder is private (0700, every file in it 0600): the bastion is shared, and the socket in
it is the agent's whole control API.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from console import paths
from console.names import check_label, check_subdomain

API_VERSION = 1
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def agents_home() -> Path:
    """One folder per profile's agent, below the state home."""
    return paths.state_home() / "local"


@dataclass(frozen=True)
class AgentPaths:
    root: Path

    @classmethod
    def for_profile(cls, profile: str) -> AgentPaths:
        return cls(agents_home() / profile)

    @property
    def lock(self) -> Path:
        """Held (flock) by the running agent for its whole life."""
        return self.root / "agent.lock"

    @property
    def start_lock(self) -> Path:
        """Held by a client while it checks for an agent and starts one, so two never start."""
        return self.root / "start.lock"

    @property
    def socket(self) -> Path:
        """The agent's API: HTTP over this Unix socket, served to its own user only."""
        return self.root / "agent.sock"

    @property
    def agent_file(self) -> Path:
        """JSON: pid, socket, gateway URL, API version; written once the agent listens."""
        return self.root / "agent.json"

    @property
    def database(self) -> Path:
        return self.root / "state.db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    @property
    def cache(self) -> Path:
        """Where predictors keep fetched model versions."""
        return self.root / "model-cache"

    def pod_log(self, namespace: str, pod: str, previous: bool = False) -> Path:
        """A pod's (or job's) log file; a namespace that is not a DNS-1123 label or a pod name
        that is not a subdomain is refused (:class:`console.names.InvalidName`) before it can
        become a path."""
        check_label(namespace, "namespace")
        check_subdomain(pod, "pod name")
        return self.logs / namespace / (f"{pod}.previous.log" if previous else f"{pod}.log")

    def make_private(self) -> None:
        """Create the state folder 0700 (its parents as the umask has them); an existing one
        left open to others is closed again."""
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        _tighten(self.root, PRIVATE_FOLDER)

    def tighten_all(self) -> None:
        """Every folder in the state folder 0700 and every file 0600 (an older agent wrote them
        0755/0644). Symbolic links are left as they are: their mode means nothing."""
        self.make_private()
        for folder, subfolders, files in os.walk(self.root):
            for name in subfolders:
                _tighten(Path(folder) / name, PRIVATE_FOLDER)
            for name in files:
                _tighten(Path(folder) / name, PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    try:
        found = path.lstat()
    except FileNotFoundError:  # gone meanwhile (a log rotated, a staging folder renamed)
        return
    if stat.S_ISLNK(found.st_mode):
        return
    if stat.S_IMODE(found.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(found.st_mode) & mode)
