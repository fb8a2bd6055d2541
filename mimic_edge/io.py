"""Atomic file writes: a temp file in the target's folder, fsync, then rename. An interrupted
write never leaves a half-written file under the final name. And a folder's writer lock, so that
writers that check and then replace take turns.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from mimic_edge.errors import ConfigError, WriteError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` to produce the file, then move it to `path` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would respect the umask
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise write_error(path, e) from None
        raise
    return path


def write_error(path: Path, error: OSError) -> WriteError:
    """A disk full, a quota or an I/O error while writing `path`, as one line; `path` is as it was."""
    reason = error.strerror or str(error) or type(error).__name__
    return WriteError(f"could not write {path}: {reason} (errno {error.errno}); nothing under that name "
                      "was changed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def check_writable_file(path: str | os.PathLike, what: str) -> Path:
    """`check_writable` for a file to be written: also refused when a folder has its name."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path}: expected a file name, found a folder")
    check_writable(path.parent, what)
    return path


def check_writable(folder: str | os.PathLike, what: str) -> Path:
    """Fail in a second, not after the work, when `folder` cannot take a new file: a read-only
    mount, no permission, a file in the way. A missing folder is judged by the nearest folder
    above it that exists, where it would be made; nothing is left behind. `what` names the option."""
    folder = Path(folder)
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(0, "a file, not a folder", str(existing))
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"{what} {folder}: expected a folder this process can write to, found "
                          f"{(e.strerror or str(e)).lower()}") from None
    return folder


LOCK_NAME = ".mimic-edge.lock"


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, on_wait: Callable[[str], None] = lambda _: None):
    """Hold `folder`'s writer lock (an flock on folder/.mimic-edge.lock, removed on release), so
    that writers that check what is there and then replace it take turns: one export's check and
    commit can never interleave with another's. Waits for a holder, after saying so through
    `on_wait`. Where flock does not exist (not POSIX), no lock is taken."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(folder) / LOCK_NAME
    made = not path.parent.exists()  # removed again if the writer leaves it empty
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)  # again: a holder that made it may have removed it
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(f"waiting for another mimic-edge export writing into {path.parent} (lock {path.name})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder before us may have removed the file: then lock the one there now
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it: a waiter then finds another file
        os.close(fd)
        if made and not any(path.parent.iterdir()):
            path.parent.rmdir()


def check_array_sizes(path: str | os.PathLike, error: type[Exception]) -> None:
    """Every array of the .npy or .npz file at `path` holds the bytes its header declares. numpy
    allocates what a header declares before reading: a truncated or crafted file claiming
    (400000, 100, 300) float32 would ask for 45 GiB. Raises `error` naming the member; a file
    that is no array at all is left to the caller's np.load, which says so."""
    import zipfile

    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.filename.endswith(".npy"):
                        with archive.open(info) as f:
                            _check_declared_size(f, info.file_size, f"{path}: {info.filename}", error)
        else:
            with open(path, "rb") as f:
                _check_declared_size(f, path.stat().st_size, str(path), error)
    except (OSError, zipfile.BadZipFile, EOFError):
        return  # unreadable: likewise


def _check_declared_size(f, size: int, where: str, error: type[Exception]) -> None:
    import numpy as np

    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError):
        return  # not an array header: the caller's np.load reports that in its words
    count = 1
    for n in shape:
        count *= n
    declared, available = count * dtype.itemsize, size - f.tell()
    if declared > available:
        raise error(f"{where}: its header declares {dtype} {tuple(shape)} ({declared:,} bytes), found {available:,} "
                    "bytes of data: expected a whole array (the file is truncated or was made by hand)")
