"""Real ``recsys-job`` processes for the hardening tests, and what a reader can see of a version.

Each process pays TensorFlow's import (about 7 s), so a test module launches its processes
together and lets them wait at ``RECSYS_FAULT=<point>:pause`` where it needs to act mid-run.
"""

import hashlib
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys import faults
from recsys.storage import views
from recsys.storage.bulk import schema_of
from recsys.storage.database import SCHEMA_PLACEHOLDER
from recsys.storage.schema import OUTPUT_TABLES
from tests.integration._ingest_files import ROWS_MD5
from tests.integration._run_data import (
    console_script,
    run_tables,
    stray_tables,
    subprocess_env,
    visible_rows,
)

#: The alias view serving ``production`` (the CLI does not read it, so
#: :mod:`recsys.storage.views` has no handle on it).
production_recommendations = sa.Table(
    "production_recommendations",
    sa.MetaData(schema=SCHEMA_PLACEHOLDER),
    sa.Column("version", sa.Text),
)


@dataclass
class Job:
    """A running ``recsys-job``; stderr read so far is kept for the final result."""

    process: subprocess.Popen[str]
    stderr_seen: list[str] = field(default_factory=list)

    def wait_paused(self) -> None:
        """Block until the process stands at its pause point; fail if it ended instead."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_seen.append(line)
            if line.startswith(faults.PAUSED):
                return
        raise AssertionError(f"never paused: {''.join(self.stderr_seen)}")

    def resume(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def finish(self, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        stdout, stderr = self.process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, stdout, "".join(self.stderr_seen) + stderr
        )


def launch(args: Sequence[str], *, fault: str = "", env: dict[str, str] | None = None) -> Job:
    """Start the installed console script with ``args`` (and a fault point, extra environment)."""
    process = subprocess.Popen(
        [str(console_script()), *args],
        env={**subprocess_env(fault), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Job(process)


def database_args(database_url: URL, schema: str) -> list[str]:
    """The global options that point the job at ``schema`` of the test database."""
    return [
        "--database-url",
        database_url.render_as_string(hide_password=False),
        "--schema",
        schema,
    ]


def visible(conn: sa.Connection, version: str) -> dict[str, int]:
    """Rows of ``version`` a reader gets from each output table and each analysts' view."""
    rows = visible_rows(conn, version)
    for view in (
        views.published_recommendations,
        views.evaluation_vs_baseline,
        views.published_similar_items,
        production_recommendations,
    ):
        rows[view.name] = conn.execute(
            sa.select(sa.func.count()).select_from(view).where(view.c.version == version)
        ).scalar_one()
    return rows


#: Checksums of a version no output table has a row of.
ABSENT = (hashlib.md5(b"").hexdigest(),) * len(OUTPUT_TABLES)


def output_checksums(schema_name: str, versions: str) -> sa.TextClause:
    """One statement, so one snapshot: each version's name and an md5 of its rows in each of
    the output tables (see ABSENT). ``versions`` is a FROM item ``w`` with a column
    ``name`` (and any WHERE clause on it)."""
    columns = ", ".join(
        f'(SELECT {ROWS_MD5} FROM "{schema_name}"."{table.name}" t WHERE t.version = w.name)'
        for table in OUTPUT_TABLES
    )
    return sa.text(f"SELECT w.name, {columns} FROM {versions}")


def contents(engine: sa.Engine, versions: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The output checksums of ``versions`` as they stand now."""
    with engine.connect() as conn:
        query = output_checksums(schema_of(conn), "unnest(CAST(:names AS text[])) AS w (name)")
        return {name: tuple(sums) for name, *sums in conn.execute(query, {"names": list(versions)})}


def assert_nothing_visible(conn: sa.Connection, version: str, run_ids: Sequence[int]) -> None:
    """No row of ``version`` anywhere a reader looks, and no table left by its runs."""
    assert visible(conn, version) == dict.fromkeys(visible(conn, version), 0)
    assert [name for run_id in run_ids for name in run_tables(conn, run_id)] == []
    assert stray_tables(conn) == []


def server_now(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()


def terminate_job_sessions(engine: sa.Engine, since: datetime) -> int:
    """``pg_terminate_backend`` on every ``recsys-job`` session of this database opened since
    ``since`` (the jobs launched then; this process's older sessions are spared); how many."""
    activity = sa.table(
        "pg_stat_activity",
        sa.column("pid"),
        sa.column("datname"),
        sa.column("application_name"),
        sa.column("backend_start"),
        schema="pg_catalog",
    )
    with engine.connect() as conn:
        terminated = conn.execute(
            sa.select(sa.func.pg_terminate_backend(activity.c.pid)).where(
                activity.c.application_name == "recsys-job",
                activity.c.datname == sa.func.current_database(),
                activity.c.backend_start >= since,
                activity.c.pid != sa.func.pg_backend_pid(),
            )
        ).scalars()
        return sum(terminated)
