"""One writing job per folder: `job_lock(folder, "trained")` holds an exclusive OS lock.

A run folder is written by one `prepare` or `train` at a time, a clips folder by one `generate`
shard at a time. The lock is `fcntl.flock` on a small file in the folder, so the kernel releases it
the moment its process dies: a lock left by a killed job is stale by construction and the next job
takes it over (saying whose it was). The file also holds who holds the lock (pid, what, since,
command) so a second job can say "RUN is being trained by pid N since T" and exit 2.

Different locks in one folder (the `name` argument) let cooperating jobs share it: generate's
shards each take their own, so two copies of the same shard collide while distinct shards do not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from inspire.errors import BusyError, UserInputError

LOCK_PREFIX = ".inspire-lock"


def lock_path(folder: str | os.PathLike, name: str = "") -> Path:
    return Path(folder) / (LOCK_PREFIX + (f"-{name}" if name else ""))


def holder(folder: str | os.PathLike, name: str = "") -> dict | None:
    """Who last took the lock (pid, what, since, argv), or None if it was never taken."""
    try:
        return json.loads(lock_path(folder, name).read_text() or "null")
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def job_lock(folder: str | os.PathLike, what: str, *, name: str = "") -> Iterator[None]:
    """Hold the folder's lock for the duration of the block, or raise BusyError naming the holder.

    `what` completes "FOLDER is being ... by pid N": e.g. "trained", "prepared", "generated into".
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"{folder}: not a folder")
    path = lock_path(folder, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserInputError(f"{folder}: cannot write here ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise BusyError(_busy_message(folder, holder(folder, name))) from None
        previous = holder(folder, name)
        if previous and previous.get("pid") != os.getpid():
            print(
                f"{folder}: taking over the lock of a stopped job (pid {previous.get('pid')}, "
                f"{previous.get('what', 'a job')} since {previous.get('since', '?')})",
                file=sys.stderr,
            )
        info = {
            "pid": os.getpid(),
            "what": what,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released cleanly: nothing stale to report next time
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _busy_message(folder: Path, info: dict | None) -> str:
    if not info:
        return f"{folder} is in use by another inspire job; wait for it to finish"
    return f"{folder} is being {info.get('what', 'used')} by pid {info.get('pid', '?')} since {info.get('since', '?')}"
