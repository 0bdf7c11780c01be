"""What a failed ``recsys-job run`` leaves behind: nothing visible, the registry saying why, and a
version name that can be run again.

Raised faults run in this process at every fault point; two SIGKILLs (no cleanup code runs, as
when a machine dies) run the installed console script in subprocesses, started together because
each pays TensorFlow's import.
"""

import signal
import subprocess
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys import faults
from recsys.errors import VersionConflict
from recsys.faults import InjectedFault
from recsys.pipeline import run
from recsys.storage import schema
from recsys.versions import registry
from tests.integration._run_data import (
    FAST_OPTIONS,
    N_USERS,
    console_script,
    expect_published,
    fast_config,
    populated_schema,
    quiet,
    recommendations,
    run_rows,
    run_tables,
    stray_tables,
    subprocess_env,
    version_row,
    visible_rows,
    wait_until_not_live,
)

FAULT_POINTS = (
    "started",
    "training",
    *(f"write:{table.name}" for table in schema.OUTPUT_TABLES),
    "publish:before",
    "publish:commit",
    "publish:after",
)
KILL_POINTS = ("training", "publish:commit")

Populated = tuple[sa.Engine, str]


@pytest.fixture(scope="module")
def populated(database_url: URL) -> Iterator[Populated]:
    with populated_schema(database_url) as pair:
        yield pair


def _version(point: str) -> str:
    return point.replace(":", "-")


def _nothing_visible(conn: sa.Connection, version: str, run_id: int) -> None:
    assert visible_rows(conn, version) == dict.fromkeys(visible_rows(conn, version), 0)
    assert run_tables(conn, run_id) == []
    assert stray_tables(conn) == []


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_failure_at_any_point_leaves_nothing_visible(
    populated: Populated, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    engine, _ = populated
    version = _version(point)
    monkeypatch.setenv(faults.ENV, point)
    with pytest.raises(InjectedFault):
        run(engine, version, fast_config(), report=quiet)
    monkeypatch.delenv(faults.ENV)

    with engine.connect() as conn:
        row = version_row(conn, version)
        (attempt,) = run_rows(conn, version)
        if point == "publish:after":  # the publishing transaction had committed
            assert row.status == "published" and row.error is None
            assert attempt.status == "succeeded"
            assert visible_rows(conn, version)["recommendations"] == 10 * N_USERS
            assert stray_tables(conn) == []
        else:
            assert row.status == "failed"
            assert f"fault injected at {point!r}" in row.error
            assert attempt.status == "failed" and attempt.error == row.error
            _nothing_visible(conn, version, attempt.run_id)

    if point == "publish:after":
        with pytest.raises(VersionConflict, match="--replace"):
            run(engine, version, fast_config(), report=quiet)
        return
    run(engine, version, fast_config(), report=quiet)
    expect_published(engine, version)
    with engine.connect() as conn:
        assert [r.status for r in run_rows(conn, version)] == ["failed", "succeeded"]


@pytest.mark.parametrize("point", ("training", "write:recommendations", "publish:commit"))
def test_a_failed_replacement_keeps_the_published_version(
    populated: Populated, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    engine, _ = populated
    version = f"kept-{_version(point)}"
    run(engine, version, fast_config(), report=quiet)
    with engine.connect() as conn:
        before = version_row(conn, version)
        published_recommendations = recommendations(conn, version)
        published_counts = visible_rows(conn, version)

    monkeypatch.setenv(faults.ENV, point)
    with pytest.raises(InjectedFault):
        run(engine, version, fast_config(top_k=3), replace=True, report=quiet)

    with engine.connect() as conn:
        after = version_row(conn, version)
        assert after.status == "published" and after.error is None
        assert (after.run_id, after.published_at) == (before.run_id, before.published_at)
        assert recommendations(conn, version) == published_recommendations
        assert visible_rows(conn, version) == published_counts
        first, failed = run_rows(conn, version)
        assert (first.status, failed.status, failed.replacing) == ("succeeded", "failed", True)
        assert f"fault injected at {point!r}" in failed.error
        assert len(run_tables(conn, before.run_id)) == len(schema.OUTPUT_TABLES)
        assert run_tables(conn, failed.run_id) == []
        assert stray_tables(conn) == []


@pytest.fixture(scope="module")
def killed(populated: Populated, database_url: URL) -> dict[str, subprocess.CompletedProcess]:
    """Each kill point's run, killed by its own SIGKILL; both processes run at once."""
    _, name = populated
    url = database_url.render_as_string(hide_password=False)
    command = [str(console_script()), "--database-url", url, "--schema", name, "run"]
    processes = {
        point: subprocess.Popen(
            [*command, "--model-version", f"killed-{_version(point)}", *FAST_OPTIONS],
            env=subprocess_env(f"{point}:kill"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for point in KILL_POINTS
    }
    results = {}
    for point, process in processes.items():
        stdout, stderr = process.communicate(timeout=180)
        results[point] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return results


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_killed_run_leaves_nothing_visible_and_a_stale_claim(
    populated: Populated, killed: dict[str, subprocess.CompletedProcess], point: str
) -> None:
    engine, _ = populated
    version = f"killed-{_version(point)}"
    result = killed[point]
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert wait_until_not_live(engine, version)

    with engine.connect() as conn:
        assert version_row(conn, version).status == "running"
        (attempt,) = run_rows(conn, version)
        assert attempt.status == "running"
        assert not registry.is_live(conn, version)
        _nothing_visible(conn, version, attempt.run_id)

    run(engine, version, fast_config(), report=quiet)
    expect_published(engine, version)
    with engine.connect() as conn:
        abandoned, succeeded = run_rows(conn, version)
    assert (abandoned.status, succeeded.status) == ("failed", "succeeded")
    assert "abandoned" in abandoned.error
