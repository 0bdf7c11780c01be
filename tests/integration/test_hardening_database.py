"""Database faults under the real ``recsys-job``: sessions terminated mid-run, lock and statement
timeouts, a server that cannot be reached. Each ends with one line naming the problem, its own exit
code (3 unreachable, 6 connection lost, 7 timeout), no traceback, nothing of the version visible,
and a version name that runs again.

The runs share one batch of processes; those whose sessions the test terminates stand paused
until the others have ended.
"""

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL

from recsys.errors import ConnectionLost, DatabaseTimeout, DatabaseUnavailable
from recsys.pipeline import run
from recsys.storage import database
from recsys.storage.bulk import driver_connection
from recsys.storage.database import Timeouts
from tests.integration._hardening_runs import (
    assert_nothing_visible,
    database_args,
    launch,
    server_now,
    terminate_job_sessions,
)
from tests.integration._published_versions import cli
from tests.integration._run_data import (
    FAST_OPTIONS,
    expect_published,
    fast_config,
    populated_schema,
    quiet,
    recommendations,
    run_rows,
    version_row,
    wait_until_not_live,
)

#: Where each terminated run stands when its sessions go: idle while training, or in the open
#: publishing transaction with every output COPYed.
TERMINATED = {"while-training": "training", "while-publishing": "publish:before"}
#: Terminated while training; before it resumes another run claims the name and publishes it.
TAKEN_OVER = "taken-over"
LOCKED, UNREACHABLE = "locked-out", "unreachable"


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


@dataclass
class Faulted:
    terminated: tuple[sa.Engine, str]
    locked: tuple[sa.Engine, str]
    results: dict[str, subprocess.CompletedProcess[str]]
    sessions_terminated: int
    #: TAKEN_OVER's recommendations as the run that took it over published them.
    taken_over_recommendations: list[tuple[int, int, int]]
    password: str


@pytest.fixture(scope="module")
def faulted(database_url: URL) -> Iterator[Faulted]:
    """One batch of processes. LOCKED runs with a 1 s lock timeout while the test holds SHARE
    UPDATE EXCLUSIVE on its ``recommendations`` (which readers pass, but the exclusive lock a
    publish takes does not); UNREACHABLE is pointed at a closed port. Once both have ended, the
    sessions of the paused runs (the only job sessions left) are terminated."""
    password = f"Secret-{uuid.uuid4().hex}"
    with (
        populated_schema(database_url) as (engine, name),
        populated_schema(database_url) as (locked_engine, locked_name),
    ):
        launched_at = server_now(engine)
        run_args = [*database_args(database_url, name), "run", "--model-version"]
        paused = {
            version: launch([*run_args, version, *FAST_OPTIONS], fault=f"{point}:pause")
            for version, point in (*TERMINATED.items(), (TAKEN_OVER, "training"))
        }
        with locked_engine.begin() as holder:  # the lock goes with this transaction
            driver_connection(holder).cursor().execute(
                sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(
                    sql.Identifier(locked_name, "recommendations")
                )
            )
            impatient = [*database_args(database_url, locked_name), "--lock-timeout", "1"]
            closed_port = f"postgresql://someone:{password}@127.0.0.1:1/nowhere"
            ending = {
                LOCKED: launch([*impatient, "run", "--model-version", LOCKED, *FAST_OPTIONS]),
                UNREACHABLE: launch(
                    ["--database-url", closed_port, "run", "--model-version", "v1", *FAST_OPTIONS]
                ),
            }
            results = {version: job.finish() for version, job in ending.items()}

        for job in paused.values():
            job.wait_paused()
        sessions = terminate_job_sessions(engine, launched_at)
        for version in paused:
            assert wait_until_not_live(engine, version)
        run(engine, TAKEN_OVER, fast_config(), report=quiet)
        with engine.connect() as conn:
            taken = recommendations(conn, TAKEN_OVER)
        for job in paused.values():
            job.resume()
        results |= {version: job.finish() for version, job in paused.items()}
        yield Faulted(
            (engine, name), (locked_engine, locked_name), results, sessions, taken, password
        )


@pytest.mark.parametrize("version", TERMINATED)
def test_a_run_whose_sessions_are_terminated_fails_cleanly_and_runs_again(
    faulted: Faulted, database_url: URL, version: str
) -> None:
    # Each run had its claim's session and at least one pooled one.
    assert faulted.sessions_terminated >= 2 * (len(TERMINATED) + 1)
    result = faulted.results[version]
    assert result.returncode == ConnectionLost.exit_code, result.stderr
    (error,) = _error_lines(result)
    assert error.startswith(
        ("error: lost the database connection", "error: the database session holding")
    )

    engine, name = faulted.terminated
    with engine.connect() as conn:
        row = version_row(conn, version)
        (attempt,) = run_rows(conn, version)
        assert (row.status, attempt.status) == ("failed", "failed")
        assert_nothing_visible(conn, version, [attempt.run_id])

    rerun = cli(database_url, name, "run", "--model-version", version, *FAST_OPTIONS)
    assert rerun.exit_code == 0, rerun.output
    expect_published(engine, version)


def test_a_run_that_lost_its_claim_cannot_publish_over_the_run_that_took_it(
    faulted: Faulted,
) -> None:
    result = faulted.results[TAKEN_OVER]
    assert result.returncode == ConnectionLost.exit_code, result.stderr
    (error,) = _error_lines(result)
    assert f"session holding version {TAKEN_OVER!r} ended mid-run" in error
    assert "nothing was published" in error

    engine, _ = faulted.terminated
    with engine.connect() as conn:
        assert version_row(conn, TAKEN_OVER).status == "published"
        assert recommendations(conn, TAKEN_OVER) == faulted.taken_over_recommendations
        first, second = run_rows(conn, TAKEN_OVER)
    assert (first.status, second.status) == ("failed", "succeeded")
    assert "abandoned" in first.error  # marked by the second run; the first changed nothing after


def test_a_lock_held_on_an_output_table_times_the_publish_out(
    faulted: Faulted, database_url: URL
) -> None:
    result = faulted.results[LOCKED]
    assert result.returncode == DatabaseTimeout.exit_code, result.stderr
    assert "best epoch" in result.stdout  # trained; it was the publish that waited
    (error,) = _error_lines(result)
    assert error == (
        "error: database timeout: canceling statement due to lock timeout "
        "(see --lock-timeout and --statement-timeout)"
    )
    engine, name = faulted.locked
    with engine.connect() as conn:
        row = version_row(conn, LOCKED)
        (attempt,) = run_rows(conn, LOCKED)
        assert row.status == "failed" and "lock timeout" in row.error
        assert_nothing_visible(conn, LOCKED, [attempt.run_id])

    rerun = cli(database_url, name, "run", "--model-version", LOCKED, *FAST_OPTIONS)
    assert rerun.exit_code == 0, rerun.output
    expect_published(engine, LOCKED)


def test_an_unreachable_server_stops_run_with_one_line_and_exit_3(faulted: Faulted) -> None:
    result = faulted.results[UNREACHABLE]
    assert result.returncode == DatabaseUnavailable.exit_code, result.stderr
    (error,) = _error_lines(result)
    assert error.startswith("error: cannot connect to postgresql://someone:***@127.0.0.1:1/nowhere")
    assert faulted.password not in result.stdout + result.stderr


def test_a_statement_timeout_from_the_environment_cancels_a_blocked_statement(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """``versions`` waits for a table the test locks; with lock waits unbounded
    (RECSYS_LOCK_TIMEOUT=0), only the statement timeout (RECSYS_STATEMENT_TIMEOUT=1) ends it."""
    with engine.begin() as holder:
        driver_connection(holder).cursor().execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(schema, "model_versions")
            )
        )
        job = launch(
            [*database_args(database_url, schema), "versions"],
            env={"RECSYS_STATEMENT_TIMEOUT": "1", "RECSYS_LOCK_TIMEOUT": "0"},
        )
        result = job.finish(timeout=60)
    assert result.returncode == DatabaseTimeout.exit_code, result.stderr
    (error,) = _error_lines(result)
    assert "canceling statement due to statement timeout" in error


def test_timeouts_are_set_on_every_connection_and_keep_the_urls_options(
    database_url: URL, schema: str
) -> None:
    url = database_url.update_query_dict({"options": "-c work_mem=8MB"})
    settings = ("statement_timeout", "lock_timeout", "work_mem")
    for timeouts, expected in (
        (Timeouts(), ("0", "1min", "8MB")),
        (Timeouts(statement=2.5, lock=0.0001), ("2500ms", "1ms", "8MB")),
        (Timeouts(statement=0, lock=0), ("0", "0", "8MB")),
    ):
        engine = database.connect(url, schema, timeouts=timeouts)
        try:
            with engine.connect() as conn:
                shown = tuple(
                    conn.execute(sa.select(sa.func.current_setting(name))).scalar_one()
                    for name in settings
                )
        finally:
            engine.dispose()
        assert shown == expected
