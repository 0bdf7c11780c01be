"""TensorFlow's start-up lines kept out of a process's output.

Importing TensorFlow 2.21 writes, from C++ and straight to file descriptor 2, lines such as
``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`` and
``I0000 … port.cc:153] oneDNN custom operations are on …`` (twice: two of its libraries log it).
``TF_CPP_MIN_LOG_LEVEL`` does not stop them: absl logs them before anything reads it. So the first
``import tensorflow`` after :func:`quiet_start` runs with descriptor 2 caught, and what was
written there meanwhile is written back without the log records below ``TF_CPP_MIN_LOG_LEVEL``
(default 2 here: errors and fatal records stay, as does everything that is not a log record).
Only logs are touched: oneDNN stays on, so the numbers do not change. A user's own
``TF_CPP_MIN_LOG_LEVEL`` wins (``0`` keeps every line).

Public API:
    LEVEL = "TF_CPP_MIN_LOG_LEVEL"; DEFAULT_LEVEL = "2"
    quiet_start() -> None: call before TensorFlow is imported (the CLI's entry point, a Ray
        worker's setup hook); sets the default level where none is set, idempotent
    SETUP_HOOK: quiet_start's dotted name, for Ray's ``worker_process_setup_hook``
    start_up_lines_removed(lines, level) -> ``lines`` without the log records below ``level``
"""

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

LEVEL = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "2"
SETUP_HOOK = f"{__name__}.quiet_start"

#: Severities in TF_CPP_MIN_LOG_LEVEL's order: 1 hides INFO, 2 also WARNING, 3 also ERROR.
_SEVERITIES = "IWEF"
#: absl's record (``I0000 00:00:1796627704.423528    9400 port.cc:153] …``: before absl is
#: initialised the seconds count from the epoch) and TensorFlow's older one
#: (``2024-08-10 09:16:11.569780: I tensorflow/core/util/port.cc:153] …``).
_RECORD = re.compile(
    rb"^(?:(?P<absl>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tf>[IWEF]) \S+:\d+\])"
)
_BEFORE_INITIALIZE_LOG = b"All log messages before absl::InitializeLog() is called"
#: The second line of cpu_feature_guard's record (it names the instructions TensorFlow skips).
_CONTINUED = b"To enable the following instructions:"


def quiet_start() -> None:
    """From now on, the first ``import tensorflow`` in this process leaves out its start-up lines
    below the level of ``TF_CPP_MIN_LOG_LEVEL`` (set to 2 where it is not set)."""
    os.environ.setdefault(LEVEL, DEFAULT_LEVEL)
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


def start_up_lines_removed(lines: Sequence[bytes], level: int) -> list[bytes]:
    """``lines`` of output without the log records that ``level`` hides (and absl's line that
    announces them); every other line is kept."""
    kept: list[bytes] = []
    hiding = False
    for line in lines:
        if _BEFORE_INITIALIZE_LOG in line:
            hiding = level >= 1
        elif (match := _RECORD.match(line)) is not None:
            hiding = _SEVERITIES.index((match["absl"] or match["tf"]).decode()) < level
        elif not (hiding and line.startswith(_CONTINUED)):
            hiding = False
        if not hiding:
            kept.append(line)
    return kept


def _level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (anything but a number shows every line)."""
    try:
        return int(os.environ.get(LEVEL, "0"))
    except ValueError:
        return 0


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with a loader that catches its start-up
    lines; then leaves ``sys.meta_path``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader with descriptor 2 caught, then hands the module its real loader."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            with _filtered_stderr(_level()):
                self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader


@contextlib.contextmanager
def _filtered_stderr(level: int) -> Iterator[None]:
    """Descriptor 2 goes to a file for the block; then its lines, less the hidden records, are
    written to the real descriptor 2 (nothing else is lost, only delayed)."""
    if level <= 0:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to catch
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().splitlines(keepends=True)
            _write_all(2, b"".join(start_up_lines_removed(lines, level)))


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]
