"""Where one profile's agent keeps its files: ``${XDG_STATE_HOME:-~/.local/state}/fleetdeck/
local/<profile>/`` holds the lock, the port file, the SQLite state and the logs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

API_VERSION = 1


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleetdeck" / "local"


@dataclass(frozen=True)
class AgentPaths:
    root: Path

    @classmethod
    def for_profile(cls, profile: str) -> AgentPaths:
        return cls(state_home() / profile)

    @property
    def lock(self) -> Path:
        """Held (flock) by the running agent for its whole life."""
        return self.root / "agent.lock"

    @property
    def start_lock(self) -> Path:
        """Held by a client while it checks for an agent and starts one, so two never start."""
        return self.root / "start.lock"

    @property
    def port_file(self) -> Path:
        """JSON: pid, API URL, gateway URL, API version; written once the agent listens."""
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
        return self.logs / namespace / (f"{pod}.previous.log" if previous else f"{pod}.log")
