"""Named fault points, so tests can prove what a crash at each step leaves behind.

Set ``RECSYS_FAULT=<point>`` (fail with an exception) or ``RECSYS_FAULT=<point>:kill`` (the process
sends itself SIGKILL: no cleanup code runs, as when a machine dies). Unset, a checkpoint costs one
dictionary lookup.
"""

import os
import signal

ENV = "RECSYS_FAULT"


class InjectedFault(RuntimeError):
    """Raised at a fault point named in ``RECSYS_FAULT``."""


def checkpoint(point: str) -> None:
    """Fail here if ``RECSYS_FAULT`` names this point."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    kill = wanted.endswith(":kill")
    if wanted.removesuffix(":kill") != point:
        return
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"fault injected at {point!r} ({ENV})")
