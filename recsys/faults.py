"""Named fault points, so tests can prove what a crash at each step leaves behind.

Set ``RECSYS_FAULT=<point>`` (fail with an exception), ``RECSYS_FAULT=<point>:kill`` (the process
sends itself SIGKILL: no cleanup code runs, as when a machine dies) or
``RECSYS_FAULT=<point>:pause`` (the first time the point is reached, the process says so on
stderr and stands still until it gets SIGUSR1, at most :data:`PAUSE_SECONDS`: a test can then act
on the database mid-run, e.g. terminate the run's sessions or read the views while a publish is
open). Unset, a checkpoint costs one dictionary lookup.

``RECSYS_FAULT_ONCE=<file>`` makes the fault fire once across processes: where the file exists
the point is passed, and the process that fires it creates the file first. A Ray worker killed
mid-shard is replaced by one that retries the shard and must get through; the driver hands both
variables to its workers (:func:`environment`).
"""

import os
import signal
import sys
import time

ENV = "RECSYS_FAULT"
ONCE_ENV = "RECSYS_FAULT_ONCE"
#: A paused run carries on by itself after this long, so a test that dies cannot strand it.
PAUSE_SECONDS = 120.0
#: What a paused run prints to stderr (before the point's name), for a test to wait on.
PAUSED = "fault: paused at"
_paused: set[str] = set()  # points that paused already (``training`` is reached every epoch)


class InjectedFault(RuntimeError):
    """Raised at a fault point named in ``RECSYS_FAULT``."""


def checkpoint(point: str) -> None:
    """Fail, die or pause here if ``RECSYS_FAULT`` names this point."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, action = wanted.rpartition(":")
    if action not in ("kill", "pause"):  # point names contain ':' themselves
        name, action = wanted, "raise"
    if name != point or not _first_across_processes():
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "pause":
        if point not in _paused:
            _paused.add(point)
            _pause(point)
        return
    raise InjectedFault(f"fault injected at {point!r} ({ENV})")


def environment() -> dict[str, str]:
    """This process's fault settings, for processes it has started elsewhere (Ray workers)."""
    return {name: os.environ[name] for name in (ENV, ONCE_ENV) if os.environ.get(name)}


def _first_across_processes() -> bool:
    """False where ``RECSYS_FAULT_ONCE`` names a file that exists; else creates it (at once,
    so of two processes racing only one fires) and says True."""
    marker = os.environ.get(ONCE_ENV)
    if not marker:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _pause(point: str) -> None:
    """Sleep until SIGUSR1 (handled in Python, so TensorFlow's threads cannot take it and die)."""
    resumed = False

    def resume(_signum: int, _frame: object) -> None:
        nonlocal resumed
        resumed = True

    previous = signal.signal(signal.SIGUSR1, resume)
    try:
        print(
            f"{PAUSED} {point!r} (pid {os.getpid()}); SIGUSR1 resumes", file=sys.stderr, flush=True
        )
        deadline = time.monotonic() + PAUSE_SECONDS
        while not resumed and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGUSR1, previous)
