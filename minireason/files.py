"""Files a run writes and reads, safely: atomic writes, UTF-8 reads that name the bad line, and one message
for every file-system error.

A file is either complete or absent: `written_whole` (and `atomic_write`, text through it) writes a
temporary name, fsyncs it and renames it over the target (a rename is atomic on POSIX file systems), so a kill
or a full disk mid-write leaves the old file, never half of a new one. A failed or interrupted write removes
its temporary file; only kill -9 leaves one, named with the dead process's id, which the next process to lock
the folder sweeps (`sweep_temporaries`). A failed write names its file; on a full disk the message says so and
that nothing finished was lost (`describe_os_error`, used by every script's error boundary, `run_cli`).

One writer at a time: `lock` takes an exclusive flock on a `.lock` file beside what a process writes (a run
folder, a samples file), so a second process is refused in one line; the kernel drops the lock when the
process dies, kill -9 included. A script's main releases its locks when it returns (`releasing_locks`). A lock
is taken after every check that can refuse the command, so a refused command writes nothing; `held_unchanged`
checks a folder's lock without writing to it (a run moved aside whole).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator


def atomic_write(path: str | os.PathLike, text: str | Iterable[str]) -> None:
    """Write text (one string, or an iterable of pieces) to path atomically (`written_whole`)."""
    with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for piece in [text] if isinstance(text, str) else text:
            f.write(piece)


@contextlib.contextmanager
def written_whole(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside path for the with-block to write (`PATH.PID.tmp`: the process id, so processes
    that write one file, the lab's --jobs, never share one); fsynced and renamed over path when the block
    completes, removed when it fails or is interrupted (Ctrl-C, SIGTERM). Only kill -9 leaves one behind, and
    the next process to lock the folder sweeps it (`sweep_temporaries`)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path, target=True) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


TMP_SUFFIX = ".tmp"
_TEMPORARY = re.compile(rf"\.(\d+){re.escape(TMP_SUFFIX)}$")  # written_whole's names: the writer's pid, the suffix


def sweep_temporaries(folder: str | os.PathLike) -> None:
    """Remove the temporary files (`written_whole`'s) in folder whose process is no longer running, naming
    each; a live process's are left alone."""
    for path in sorted(Path(folder).glob(f"*{TMP_SUFFIX}")):
        m = _TEMPORARY.search(path.name)
        if m and path.is_file() and not _running(int(m.group(1))):
            path.unlink(missing_ok=True)
            print(f"removed {path}, a temporary file left by process {m.group(1)}, which is no longer running")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sync_folder(folder: str | os.PathLike) -> None:
    """fsync every file of a folder (written by libraries that do not), so that a rename publishes it whole."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            try:
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
            except OSError as e:
                raise named(e, path) from None


def append_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Append lines to an append-only file and fsync it (a torn last line is dropped when it is read back)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise named(e, path) from None


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's contents; undecodable bytes fail with the file, line and column."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - data.rfind(b"\n", 0, e.start)
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {column})") from None


def parse_json(text: str, where: str, what: str = "JSON"):
    """json.loads, failing in one line that names `where` (a file, or file:line): bad syntax, or nesting too deep
    for the reader (a RecursionError otherwise)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        detail = f", line {e.lineno}" if what != "JSON" else ""
        raise ValueError(f"{where}: not valid {what} ({e.msg}{detail})") from None
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply to read") from None


def named(e: OSError, path: str | os.PathLike, target: bool = False) -> OSError:
    """The same error, naming the file it happened to (a failed write() names none). target: name `path`, the
    file the user asked for, even where the error names the temporary file it was being written through."""
    return e if e.filename and not target else OSError(e.errno, e.strerror or str(e), str(path))


_LOCKED: dict[str, int] = {}  # lock files this process holds -> their open descriptors


def lock(lock_file: str | os.PathLike, what: str) -> bool:
    """Hold an exclusive lock on lock_file (created if missing) for this process, then sweep its folder of dead
    processes' temporary files; a process that holds it already goes on (False: it took nothing new). Another
    process's lock is refused in one line naming `what` and the holder's pid. Take it only once every check
    that can refuse the command has passed: a refused command leaves the folder as it was."""
    key = str(Path(lock_file).resolve())
    if key in _LOCKED:
        return False
    try:
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # an unwritable folder: name what the user asked for, not the lock file
        raise OSError(e.errno, e.strerror, what) from None
    _flock_or_refuse(fd, what)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _LOCKED[key] = fd
    sweep_temporaries(Path(key).parent)
    return True


def _flock_or_refuse(fd: int, what: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 20).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ValueError(f"{what} is being written by another process (pid {holder}); wait for it to end, "
                         "or use another folder") from None


@contextlib.contextmanager
def held_unchanged(lock_file: str | os.PathLike, what: str):
    """For a with-block, the lock on an existing lock_file, refused as `lock` refuses it, but with nothing
    written: the file is opened read-only, neither created nor given this process's pid (a folder that is moved
    aside keeps every byte)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:  # nobody ever wrote this folder through a lock
        yield
        return
    _flock_or_refuse(fd, what)
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike, what: str):
    """`lock` for the duration of a with-block (released after it, unless it was held before)."""
    took = lock(lock_file, what)
    try:
        yield
    finally:
        if took:
            unlock(lock_file)


def unlock(lock_file: str | os.PathLike) -> None:
    """Release a lock this process holds (nothing if it holds none)."""
    fd = _LOCKED.pop(str(Path(lock_file).resolve()), None)
    if fd is not None:
        os.close(fd)


def releasing_locks(main):
    """A script's main that releases, when it returns or fails, every lock it took."""
    @functools.wraps(main)
    def run(*args, **kwargs):
        held = set(_LOCKED)
        try:
            return main(*args, **kwargs)
        finally:
            for key in set(_LOCKED) - held:
                unlock(key)
    return run


def describe_os_error(e: OSError) -> str:
    """One line for a file-system error: which file, and what went wrong."""
    if e.errno == errno.ENOSPC:
        return f"no space left while writing {e.filename or 'a file'}; nothing finished was lost"
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"
