"""Named fault points, so tests can prove what a crash at each step leaves behind.

Set ``RECSYS_FAULT=<point>`` (fail with an exception), ``RECSYS_FAULT=<point>:kill`` (the process
sends itself SIGKILL: no cleanup code runs, as when a machine dies) or
``RECSYS_FAULT=<point>:pause`` (the first time the point is reached, the process says so on
stderr and stands still until it gets SIGUSR1, at most :data:`PAUSE_SECONDS`: a test can then act
on the database mid-run, e.g. terminate the run's sessions or read the views while a publish is
open). Unset, a checkpoint costs one dictionary lookup.
"""

import os
import signal
import sys
import time

ENV = "RECSYS_FAULT"
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
    if name != point:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "pause":
        if point not in _paused:
            _paused.add(point)
            _pause(point)
        return
    raise InjectedFault(f"fault injected at {point!r} ({ENV})")


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
