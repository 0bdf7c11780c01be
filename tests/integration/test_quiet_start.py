"""What ``recsys-job run`` prints holds none of TensorFlow's start-up lines ("All log messages
before absl::InitializeLog() …", "oneDNN custom operations are on …"), neither its own nor, with
``--ray local``, those of the Ray workers it starts (Ray forwards their output to the run's); the
library's device line stays. The installed console script runs in a process of its own, as a user
or a scheduler starts it, with no ``TF_CPP_MIN_LOG_LEVEL`` of its own.
"""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.integration._hardening_runs import database_args, launch
from tests.integration._ray import import_ray
from tests.integration._run_data import FAST_OPTIONS, populated_schema

#: Pieces of TensorFlow's start-up lines: absl's notice, oneDNN's, and any C++ log record that
#: names the source file TensorFlow logged it from.
START_UP = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations",
    "port.cc:",
    "cpu_feature_guard.cc:",
)


@pytest.fixture(scope="module")
def schema_name(database_url: URL) -> Iterator[str]:
    with populated_schema(database_url) as (_, name):
        yield name


def _run(
    database_url: URL, schema_name: str, version: str, *options: str, env: dict[str, str]
) -> str:
    """``recsys-job run`` in a process of its own; its stdout and stderr together."""
    args = [*database_args(database_url, schema_name), "run", "--model-version", version]
    job = launch([*args, *FAST_OPTIONS, *options], env=env)
    result = job.finish()
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _start_up_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(piece in line for piece in START_UP)]


@pytest.fixture(autouse=True)
def _no_log_level_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job starts as a user's shell starts it: without TF_CPP_MIN_LOG_LEVEL."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)


def test_a_run_prints_no_tensorflow_start_up_lines(database_url: URL, schema_name: str) -> None:
    output = _run(database_url, schema_name, "quiet", env={})
    assert "device: " in output and "published quiet" in output
    assert _start_up_lines(output) == []


def test_nor_do_the_ray_workers_it_starts(database_url: URL, schema_name: str) -> None:
    import_ray()
    # Ray's files go under RAY_TMPDIR; a short path, as its sockets live there too.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rq", dir="/tmp"))
    try:
        env = {"RAY_TMPDIR": str(ray_tmp)}
        output = _run(database_url, schema_name, "quiet-ray", "--ray", "local", env=env)
        assert "Ray workers" in output and "published quiet-ray" in output
        assert _start_up_lines(output) == []
        assert list(ray_tmp.rglob("worker-*.err"))  # the workers' own output, also clean
        for log in ray_tmp.rglob("worker-*.err"):
            assert _start_up_lines(log.read_text(errors="replace")) == [], log
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
