"""The run folder of `cnngraph train`: claimed before any work starts, never clobbered.

A folder holds a run when it has any of the files a run writes. Training into it then needs
`--resume` (continue from `last.npz`) or `--overwrite` (remove the run's files, start afresh);
without either, nothing in it is touched. An exclusive `flock` on `.lock` stops two trainings
writing one folder: the kernel drops the lock when its holder dies, even by kill -9, so a lock
file left behind by a dead process is simply taken over (its pid is only for the message).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import CnngraphError, DataError

RUN_FILES = ("last.npz", "best.npz", "interrupted.npz", "metrics.jsonl", "metrics.csv",
             "curves.png")
LOCK = ".lock"


class RunFolderError(CnngraphError):
    """A run folder that cannot be used as asked (a usage error: exit code 2)."""

    exit_code = 2


class RunFolder:
    """An open, locked run folder; `close()` (or leaving a `with` block) releases the lock."""

    def __init__(self, path: Path, lock_fd: int, took_over: int | None):
        self.path, self._lock_fd, self.took_over = path, lock_fd, took_over

    @property
    def last(self) -> Path:
        return self.path / "last.npz"

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.ftruncate(self._lock_fd, 0)   # a pid left in the file means its holder died
            os.close(self._lock_fd)          # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def holds_run(path: Path) -> list[str]:
    """The files of a run found in `path` (empty when it holds none)."""
    return [name for name in RUN_FILES if (path / name).exists()]


def open_run(path: Path, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Check and lock a run folder before anything is compiled or loaded.

    Raises RunFolderError when the folder holds a run and neither `resume` nor `overwrite` is
    given (nothing is written then), DataError when `path` cannot be a writable folder, and
    RunFolderError when another live training holds the lock."""
    path = Path(path)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other: --resume continues "
                             "the run in the folder, --overwrite replaces it")
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: not a folder (a file is in the way); choose another --out")
    found = holds_run(path) if path.is_dir() else []
    if found and not (resume or overwrite):
        raise RunFolderError(
            f"{path}: already holds a run ({', '.join(found)}); nothing was changed. Use "
            "--resume to continue it, --overwrite to replace it, or choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the run folder ({exc.strerror}); choose "
                        "another --out") from None
    took_over = _lock(lock_fd, path)
    if overwrite:
        for name in found:
            (path / name).unlink(missing_ok=True)
    for stale in path.glob(".*.tmp"):          # half-written files of a killed process
        stale.unlink(missing_ok=True)
    return RunFolder(path, lock_fd, took_over)


def _lock(fd: int, path: Path) -> int | None:
    """Take the folder's lock; returns the pid of a dead holder whose lock file was left."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"{path}: another training (pid {holder}) is writing this folder; "
                             "wait for it to finish or choose another --out") from None
    previous = os.pread(fd, 64, 0).decode(errors="replace").strip()
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return int(previous) if previous.isdigit() and int(previous) != os.getpid() else None


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a file's content in one step: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
