"""Byte-level access to a store root: a local folder or HDFS through WebHDFS.

The store (``serving.store``) speaks only this small interface, so its layout rules, checksums
and atomic publish are written once for both kinds of root.
"""

from __future__ import annotations

import errno
import getpass
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol
from urllib.parse import urlsplit


class StoreError(Exception):
    """A store operation failed; the message names the location and what to fix."""


class MissingFile(StoreError):
    """A file (or a folder on its way) that is not in the store."""


class UnsafeFile(StoreError):
    """A file the store will not read: a symbolic link, or not a regular file."""


class FileSystem(Protocol):
    """What the store needs from a root. Paths are POSIX paths inside the filesystem."""

    description: str

    def list_dir(self, path: str) -> list[str]: ...
    def exists(self, path: str) -> bool: ...
    def is_dir(self, path: str) -> bool: ...
    def read_bytes(self, path: str) -> bytes: ...
    def open_read(self, path: str) -> Any: ...  # a context manager yielding a binary stream
    # The regular file ``relative`` (already checked: no '..', not absolute) inside ``folder``,
    # never through a link; ``length`` bounds what is read. A context manager like open_read.
    def open_in(
        self, folder: str, relative: PurePosixPath, *, length: int | None = None
    ) -> Any: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def upload_file(self, local: Path, path: str) -> None: ...
    def walk_files(self, path: str) -> list[str]: ...
    def rename(self, source: str, target: str) -> None: ...
    def replace(self, source: str, target: str) -> None: ...  # atomic, over an existing file
    def delete(self, path: str) -> None: ...
    def makedirs(self, path: str) -> None: ...
    def modified(self, path: str) -> float | None: ...  # seconds since the epoch; None: missing
    def url(self, path: str) -> str: ...


def open_root(root: str) -> tuple[FileSystem, str]:
    """The filesystem for a store root URI and the root's path inside it."""
    parts = urlsplit(root)
    if parts.scheme == "hdfs":
        if not parts.hostname or not parts.port:
            raise StoreError(
                f"{root}: an HDFS root needs host and port: hdfs://namenode:9870/path "
                "(the NameNode's HTTP/WebHDFS port)"
            )
        return HdfsFileSystem(f"http://{parts.hostname}:{parts.port}"), parts.path or "/"
    if parts.scheme == "file":
        return LocalFileSystem(), parts.path
    if parts.scheme in ("", None) or len(parts.scheme) == 1:  # plain path (or a drive letter)
        return LocalFileSystem(), str(Path(root).expanduser().absolute())
    raise StoreError(
        f"{root}: unsupported store scheme {parts.scheme!r}; use a path, file:// or hdfs://"
    )


def join(*parts: str) -> str:
    return str(PurePosixPath(*parts))


def _check_relative(relative: PurePosixPath) -> None:
    # The manifest's parser checked the path (serving.manifest.safe_relative_path); this is the
    # last line before a filesystem call, for callers that built a path some other way.
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise StoreError(f"{str(relative)!r}: not a plain relative path inside its folder")


def open_inside(folder: Path, relative: PurePosixPath) -> int:
    """A read descriptor for the regular file ``relative`` inside the local ``folder``.

    Each component is opened relative to the one before with O_NOFOLLOW, so no symbolic link is
    followed anywhere below ``folder`` (a publisher never writes one; one planted in a shared store
    could point anywhere), and the file is opened non-blocking and checked to be a regular file (a
    FIFO would block the reader forever, a device could be read without end). Raises
    ``MissingFile`` or ``UnsafeFile`` naming the path.
    """
    _check_relative(relative)
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFile(f"{folder}: no such folder") from None
    except OSError as exc:
        raise StoreError(f"{folder}: {exc.strerror or exc}") from None
    try:
        walked = PurePosixPath()
        for part in relative.parts[:-1]:
            walked /= part
            inner = _open_component(folder_fd, part, folder / walked, os.O_DIRECTORY)
            os.close(folder_fd)
            folder_fd = inner
        fd = _open_component(folder_fd, relative.name, folder / relative, os.O_NONBLOCK)
    finally:
        os.close(folder_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(f"{folder / relative}: not a regular file; the store serves files only")
    os.set_blocking(fd, True)
    return fd


def _open_component(folder_fd: int, name: str, shown: Path, flags: int) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags, dir_fd=folder_fd)
    except FileNotFoundError:
        raise MissingFile(f"{shown}: missing") from None
    except OSError as exc:
        try:
            is_link = stat.S_ISLNK(os.lstat(name, dir_fd=folder_fd).st_mode)
        except OSError:
            is_link = False
        if is_link:
            raise UnsafeFile(
                f"{shown}: is a symbolic link; a version folder holds only files and folders "
                "(a link could point anywhere outside it), so it is not followed"
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise UnsafeFile(f"{shown}: not a folder") from None
        raise StoreError(f"{shown}: {exc.strerror or exc}") from None


class LocalFileSystem:
    description = "local folder"

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            raise StoreError(f"{path}: no such folder") from None
        except NotADirectoryError:
            raise StoreError(f"{path}: not a folder") from None
        except PermissionError:
            raise StoreError(f"{path}: permission denied") from None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def read_bytes(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from None

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from None
        with stream:
            yield stream

    @contextmanager
    def open_in(
        self, folder: str, relative: PurePosixPath, *, length: int | None = None
    ) -> Iterator[IO[bytes]]:
        # ``length`` needs nothing here: the caller stops reading, and nothing is sent ahead.
        with os.fdopen(open_inside(Path(folder), relative), "rb") as stream:
            yield stream

    def write_bytes(self, path: str, data: bytes) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)

    def upload_file(self, local: Path, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, path)

    def walk_files(self, path: str) -> list[str]:
        base = Path(path)
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def rename(self, source: str, target: str) -> None:
        # os.rename replaces only an *empty* target folder, and fails on a non-empty one, so a
        # concurrent publisher can never have its version overwritten.
        if os.path.exists(target):
            raise FileExistsError(target)
        try:
            os.rename(source, target)
        except OSError as exc:
            if exc.errno in (17, 39):  # EEXIST, ENOTEMPTY
                raise FileExistsError(target) from None
            raise StoreError(f"rename {source} -> {target}: {exc.strerror or exc}") from None

    def replace(self, source: str, target: str) -> None:
        # os.replace swaps a file in one step: a reader opens the old file or the new, never
        # a half-written one.
        try:
            os.replace(source, target)
        except OSError as exc:
            raise StoreError(f"replace {target} with {source}: {exc.strerror or exc}") from None

    def delete(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)

    def makedirs(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create folder: {exc.strerror or exc}") from None

    def modified(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except FileNotFoundError:
            return None

    def url(self, path: str) -> str:
        return path


class HdfsFileSystem:
    """HDFS through WebHDFS (HdfsCLI). Every error names the HTTP status and the URL."""

    description = "HDFS (WebHDFS)"

    def __init__(self, base_url: str, user: str | None = None) -> None:
        try:
            from hdfs import InsecureClient
        except ImportError:
            raise StoreError(
                "an hdfs:// store needs the 'hdfs' package: pip install 'fleetdeck[hdfs]'"
            ) from None
        self.base_url = base_url
        self.user = user or os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
        self._client = InsecureClient(base_url, user=self.user)

    def _call(self, what: str, path: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from hdfs.util import HdfsError
        from requests.exceptions import RequestException

        # HdfsCLI rewrites a path before sending it: it normalizes '..' away (walking up out of
        # the folder meant) and expands '#LATEST' to another file. A path reaching here must
        # name exactly what it says.
        if ".." in PurePosixPath(path).parts or "#LATEST" in path:
            raise StoreError(
                f"{what} {self.url(path)}: refused, the WebHDFS client would rewrite this path "
                "('..' or '#LATEST')"
            )
        try:
            return fn(*args, **kwargs)
        except HdfsError as exc:
            raise StoreError(f"{what} {self.url(path)}: {self._explain(exc)}") from None
        except RequestException as exc:
            raise StoreError(
                f"{what} {self.url(path)}: cannot reach WebHDFS at {self.base_url} ({exc})"
            ) from None

    @staticmethod
    def _explain(exc: Any) -> str:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = getattr(exc, "status_code", None) or getattr(exc, "exception", None)
        return f"HTTP {status}: {message}" if status else message

    def url(self, path: str) -> str:
        parts = urlsplit(self.base_url)
        return f"hdfs://{parts.netloc}{path}"

    def _status(self, path: str) -> dict[str, Any] | None:
        status: dict[str, Any] | None = self._call(
            "stat", path, self._client.status, path, strict=False
        )
        return status

    def list_dir(self, path: str) -> list[str]:
        status = self._status(path)
        if status is None:
            raise StoreError(f"{self.url(path)}: no such folder")
        if status["type"] != "DIRECTORY":
            raise StoreError(f"{self.url(path)}: not a folder")
        names: list[str] = self._call("list", path, self._client.list, path)
        return sorted(names)

    def exists(self, path: str) -> bool:
        return self._status(path) is not None

    def modified(self, path: str) -> float | None:
        status = self._status(path)
        return None if status is None else status["modificationTime"] / 1000

    def is_dir(self, path: str) -> bool:
        status = self._status(path)
        return status is not None and status["type"] == "DIRECTORY"

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as stream:
            data: bytes = stream.read()
            return data

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        reader = self._call("read", path, self._client.read, path)
        with reader as stream:
            yield stream

    @contextmanager
    def open_in(
        self, folder: str, relative: PurePosixPath, *, length: int | None = None
    ) -> Iterator[IO[bytes]]:
        # HDFS has symbolic links only when an administrator turns them on; a status that is not
        # FILE (a folder, a link) is refused either way. ``length`` stops the DataNode sending
        # more than the caller will read.
        _check_relative(relative)
        path = join(folder, str(relative))
        status = self._status(path)
        if status is None:
            raise MissingFile(f"{self.url(path)}: missing")
        if status.get("type") != "FILE":
            raise UnsafeFile(
                f"{self.url(path)}: not a regular file ({str(status.get('type')).lower()}); "
                "the store serves files only"
            )
        reader = self._call("read", path, self._client.read, path, length=length)
        with reader as stream:
            yield stream

    def write_bytes(self, path: str, data: bytes) -> None:
        self._call("write", path, self._client.write, path, data=data, overwrite=True)

    def upload_file(self, local: Path, path: str) -> None:
        with local.open("rb") as stream:
            self._call("write", path, self._client.write, path, data=stream, overwrite=True)

    def walk_files(self, path: str) -> list[str]:
        files: list[str] = []
        for folder, _dirs, names in self._call("walk", path, self._client.walk, path):
            for name in names:
                files.append(str(PurePosixPath(folder, name).relative_to(path)))
        return sorted(files)

    def rename(self, source: str, target: str) -> None:
        # A plain WebHDFS RENAME onto an existing folder moves the source *into* it and reports
        # success; renameoptions=NONE makes HDFS refuse instead (FileAlreadyExistsException).
        # HdfsCLI's public rename() cannot pass that option, hence its lower-level call.
        from hdfs.util import HdfsError

        try:
            self._client._rename(source, destination=target, renameoptions="NONE")
        except HdfsError as exc:
            if getattr(exc, "exception", None) == "FileAlreadyExistsException":
                raise FileExistsError(target) from None
            raise StoreError(
                f"rename {self.url(source)} -> {target}: {self._explain(exc)}"
            ) from None

    def replace(self, source: str, target: str) -> None:
        # RENAME with renameoptions=OVERWRITE is one NameNode operation: readers see the old
        # file or the new one, never neither (a delete then rename would leave a gap).
        from hdfs.util import HdfsError

        try:
            self._client._rename(source, destination=target, renameoptions="OVERWRITE")
        except HdfsError as exc:
            raise StoreError(
                f"replace {self.url(target)} with {source}: {self._explain(exc)}"
            ) from None

    def delete(self, path: str) -> None:
        self._call("delete", path, self._client.delete, path, recursive=True)

    def makedirs(self, path: str) -> None:
        self._call("mkdirs", path, self._client.makedirs, path)
