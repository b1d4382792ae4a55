"""The publish lock: one writer at a time in a published folder, also on a shared (NFS) file system.

``DEST/.publish.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3+, where
``fcntl``/``flock`` locks are not reliable) and holds its owner: pid, host, start time and a random token. While
held, a heartbeat thread touches it every :data:`HEARTBEAT_S` seconds. A lock is stale, and is broken, when its
owner is a process of this host that no longer exists, or when nobody has touched it for ``stale_after_s``
seconds (an owner on another host that died). Breaking renames it aside first, so two waiters never both break it;
the owner confirms its token is still in the file just before it replaces anything (:meth:`PublishLock.check_held`).
A lock that cannot be had within the timeout, or cannot be created at all, is a :class:`PublishLockError` (exit 2).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wnbench.errors import UserError

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "LOCK_NAME", "PublishLock", "PublishLockError", "publish_lock"]

LOCK_NAME = ".publish.lock"
DEFAULT_LOCK_TIMEOUT_S = 120.0
#: A lock nobody has touched for this long is stale (its owner's heartbeat touches it every HEARTBEAT_S seconds).
STALE_AFTER_S = 300.0
HEARTBEAT_S = 10.0


class PublishLockError(UserError):
    """The publish lock could not be had (held too long by another publisher, or not creatable here): exit 2."""


def _owner_line(info: dict[str, Any] | None) -> str:
    if not info:
        return "an owner that has not written its name yet"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info.get("time", 0))))
    return f"pid {info.get('pid')} on host {info.get('host')} since {started}"


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@dataclass
class PublishLock:
    """A held publish lock; :func:`publish_lock` makes and releases it."""

    path: Path
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    _stop: threading.Event = field(default_factory=threading.Event)

    def held(self) -> bool:
        """Whether the lock file still names this owner (a waiter may have broken it as stale)."""
        return (_read_owner(self.path) or {}).get("token") == self.token

    def check_held(self) -> None:
        """Raise :class:`PublishLockError` unless the lock is still this owner's: called before replacing files."""
        if not self.held():
            raise PublishLockError(
                f"{self.path}: this publish lost its lock (another process broke it as stale; was this one paused "
                f"for over {STALE_AFTER_S:.0f} s?); nothing was written, publish again"
            )

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if self.held():
                    os.utime(self.path)
            except OSError:
                pass  # the next beat, or check_held, finds out


def _stale(path: Path, stale_after_s: float) -> tuple[bool, dict[str, Any] | None]:
    """Whether the lock at ``path`` is stale, and its owner as read."""
    info = _read_owner(path)
    pid = info.get("pid") if info else None
    if info and info.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
        return True, info
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, info  # released meanwhile: just try again
    return age > stale_after_s, info


def _break(path: Path, judged: dict[str, Any] | None) -> None:
    """Remove a stale lock, unless it was replaced by a live one since it was judged: rename it aside (atomic,
    so one waiter wins), then look at what was renamed, and put a live lock back."""
    aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if (
        _read_owner(aside) != judged
    ):  # a new owner took it meanwhile: give it back (fails if another holds it)
        with contextlib.suppress(OSError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def _create(path: Path, lock: PublishLock) -> bool:
    """Try once to create the lock file; False when another owner holds it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as err:
        raise PublishLockError(
            f"cannot take the publish lock {path}: {os.strerror(err.errno or errno.EIO)}; nothing was published "
            "(make the folder writable, or publish into another --to)"
        ) from err
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), "token": lock.token}, fh
        )
        fh.flush()
        os.fsync(fh.fileno())
    return True


@contextmanager
def publish_lock(
    dest: str | Path, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, stale_after_s: float = STALE_AFTER_S
) -> Iterator[PublishLock]:
    """Hold ``DEST/.publish.lock`` for the ``with`` block: wait up to ``timeout_s`` for another publisher, break a
    stale lock, and release it (only if still ours) at the end, also on error."""
    path = Path(dest) / LOCK_NAME
    lock = PublishLock(path)
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while not _create(path, lock):
        stale, owner = _stale(path, stale_after_s)
        if stale:
            _break(path, owner)
            continue
        if time.monotonic() >= deadline:
            raise PublishLockError(
                f"{path} is held by {_owner_line(owner)}; waited {timeout_s:g} s. Wait for that publish to end, "
                "or, if that process is gone, delete the lock file and publish again"
            )
        time.sleep(min(delay * (1 + random.random()), max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)
    beat = threading.Thread(target=lock._heartbeat, name="publish-lock-heartbeat", daemon=True)
    beat.start()
    try:
        yield lock
    finally:
        lock._stop.set()
        beat.join()
        if lock.held():
            path.unlink(missing_ok=True)
