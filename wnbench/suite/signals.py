"""Stopping a suite cleanly on SIGTERM, SIGHUP or SIGINT (Ctrl-C).

While :func:`interrupts_stop_the_suite` is active, each of these signals raises :class:`Interrupted` in the
driver's main thread. The executors stop their in-flight runs (whole process trees) as the exception unwinds, and
no record is written for them: they have none, and the next ``wnbench run`` reruns them. Code that must not be
cut in two -- starting a run process and registering it, writing a record -- runs inside :func:`deferred`, which
holds a signal until the block ends. The CLI prints one line and exits ``128 + signal`` (143 for SIGTERM, 130
for SIGINT, 129 for SIGHUP).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Interrupted", "deferred", "interrupts_stop_the_suite"]

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The suite driver got a stop signal. A KeyboardInterrupt, so code that handles Ctrl-C handles this too."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


class _State(threading.local):
    depth = 0
    pending: int | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.depth:
        if _state.pending is None:
            _state.pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a stop signal that arrives inside the block; raise :class:`Interrupted` for it when the block ends."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_stop_the_suite() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP/SIGINT into :class:`Interrupted` for the block (main thread only; elsewhere a no-op).

    A signal the process already ignores stays ignored: under ``nohup`` (SIGHUP ignored) a closed terminal
    must not stop the suite."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, _handler)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    _state.pending = None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
