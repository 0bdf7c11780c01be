"""The Ray cluster a run scores on, and the ``ray`` package it needs (an optional extra).

Public API:
    INSTALL = "pip install 'recsys[ray]'"
    import_ray() -> the ray module; InvalidInput (exit 2) saying how to install it if missing
    joined(address) -> context manager yielding a one-line description of the cluster
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from recsys.errors import InvalidInput, RecsysError
from recsys.model import tensorflow_logs

INSTALL = "pip install 'recsys[ray]'"
#: The address that starts a Ray of this machine's cores for the run (Ray's own meaning too).
LOCAL = "local"
#: Every worker of the run keeps TensorFlow's start-up lines out of its output, which Ray
#: forwards to the run's (a job-level hook: Ray runs it as each worker process starts).
_RUNTIME_ENV = {"worker_process_setup_hook": tensorflow_logs.SETUP_HOOK}


def import_ray() -> ModuleType:
    """The ``ray`` module, or InvalidInput saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise InvalidInput(
            f"--ray needs the ray package, which is not installed here: {INSTALL}"
        ) from exc
    return ray


@contextmanager
def joined(address: str) -> Iterator[str]:
    """Ray initialised for the block; yields what it is (nodes, CPUs, GPUs).

    ``local`` starts a Ray of the cores this process may use, stopped after the block; any other
    address (``auto``, ``host:6379``, ``ray://host:10001``) joins that cluster, and leaves it
    after. A Ray this process has initialised already (a test's) is used as it is and kept.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield _describe(ray, "this process's Ray")
        return
    try:
        if address == LOCAL:
            ray.init(address=LOCAL, num_cpus=_usable_cpus(), runtime_env=_RUNTIME_ENV)
        else:
            ray.init(address=address, runtime_env=_RUNTIME_ENV)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RecsysError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    try:
        yield _describe(ray, "a local Ray" if address == LOCAL else f"the Ray cluster at {address}")
    finally:
        ray.shutdown()


def _usable_cpus() -> int:
    """The cores this process may run on (a container may grant fewer than the host has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _describe(ray: ModuleType, what: str) -> str:
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    gpus = int(resources.get("GPU", 0))
    return (
        f"{what}: {nodes} node{'s' if nodes != 1 else ''}, {int(resources.get('CPU', 0))} CPUs"
        + (f", {gpus} GPUs" if gpus else "")
    )
