"""Who is at the other end of a Unix socket: the kernel's word (``SO_PEERCRED``), which the
peer cannot forge. The agent asks it of every client; a client asks it of the agent."""

from __future__ import annotations

import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class OptionSocket(Protocol):
    """A socket, or asyncio's view of one (``TransportSocket``): all this module reads."""

    def getsockopt(self, level: int, option: int, buffersize: int, /) -> bytes: ...


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        """The peer's login name (its uid when the system has no name for it)."""
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)


def peer_credentials(sock: OptionSocket) -> PeerCredentials:
    """For a connected socket the peer's; for a client's socket the process that listened."""
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return PeerCredentials(pid, uid, gid)
