"""SIGKILL at each phase of the real ``recsys-job run``: what is left is never half a version.

Per point: readers see nothing of the version in the output tables or the analysts' views, the
registry says ``running`` with no live owner (``versions`` shows ``stale``), and the name runs again
without ``--replace``. Killed just after the publish commit, the version is published and whole.
No row of the inputs or of the version published before is lost. ``test_run_failures`` kills at
``training`` and ``publish:commit``; these are the other points, killed in one batch of processes.
"""

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.pipeline import run
from recsys.storage import schema
from tests.integration._hardening_runs import (
    assert_nothing_visible,
    database_args,
    launch,
    production_recommendations,
    visible,
)
from tests.integration._ingest_files import table_checksums
from tests.integration._published_versions import cli
from tests.integration._run_data import (
    FAST_OPTIONS,
    expect_published,
    fast_config,
    populated_schema,
    quiet,
    run_rows,
    version_row,
    wait_until_not_live,
)

KILL_POINTS = (
    "started",
    *(f"write:{table.name}" for table in schema.OUTPUT_TABLES),
    "publish:before",
    "publish:after",
)
#: Published before the kills, with the settings of the killed runs: the measure of "complete".
BASE = "base"
INPUTS = ("movies", "users", "ratings")


def _version(point: str) -> str:
    return point.replace(":", "-")


@dataclass
class Killed:
    engine: sa.Engine
    schema: str
    results: dict[str, subprocess.CompletedProcess[str]]
    #: ``versions --json`` and ``versions`` as they were right after the kills: name → status.
    listed_json: dict[str, str]
    listed_text: dict[str, str]
    #: Checksums of the inputs and of BASE's partitions before the kills.
    kept_before: dict[str, tuple[int, str]]


def _kept(engine: sa.Engine, name: str) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        base_run = version_row(conn, BASE).run_id
    return {
        table: checksum
        for table, checksum in table_checksums(engine, name).items()
        if table in INPUTS or table.endswith(f"_r{base_run}")
    }


@pytest.fixture(scope="module")
def killed(database_url: URL) -> Iterator[Killed]:
    with populated_schema(database_url) as (engine, name):
        run(engine, BASE, fast_config(), report=quiet)
        kept_before = _kept(engine, name)
        run_args = [*database_args(database_url, name), "run", "--model-version"]
        jobs = {
            point: launch([*run_args, _version(point), *FAST_OPTIONS], fault=f"{point}:kill")
            for point in KILL_POINTS
        }
        results = {point: job.finish() for point, job in jobs.items()}
        for point in KILL_POINTS:
            assert wait_until_not_live(engine, _version(point))
        listed = cli(database_url, name, "versions", "--json")
        table = cli(database_url, name, "versions")
        assert listed.exit_code == table.exit_code == 0, listed.output + table.output
        yield Killed(
            engine,
            name,
            results,
            {v["name"]: v["status"] for v in json.loads(listed.stdout)},
            dict(line.split()[:2] for line in table.stdout.splitlines()[1:]),
            kept_before,
        )


def _complete(conn: sa.Connection, version: str) -> dict[str, int]:
    """What a reader sees of a published version, but for the alias view (one version only)."""
    rows = visible(conn, version)
    rows.pop(production_recommendations.name)
    return rows


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_leaves_no_partial_version_and_the_name_runs_again(
    killed: Killed, database_url: URL, point: str
) -> None:
    version = _version(point)
    result = killed.results[point]
    assert result.returncode == -signal.SIGKILL, result.stderr
    published = point == "publish:after"

    with killed.engine.connect() as conn:
        row = version_row(conn, version)
        (attempt,) = run_rows(conn, version)
        if published:
            assert (row.status, attempt.status) == ("published", "succeeded")
            assert _complete(conn, version) == _complete(conn, BASE)
        else:
            assert (row.status, attempt.status) == ("running", "running")
            assert_nothing_visible(conn, version, [attempt.run_id])
    expected = "published" if published else "stale"
    assert killed.listed_json[version] == killed.listed_text[version] == expected

    rerun = cli(database_url, killed.schema, "run", "--model-version", version, *FAST_OPTIONS)
    if published:
        assert rerun.exit_code == 5 and "already published" in rerun.stderr, rerun.output
        return
    assert rerun.exit_code == 0, rerun.output
    expect_published(killed.engine, version)
    with killed.engine.connect() as conn:
        assert _complete(conn, version) == _complete(conn, BASE)
        abandoned, succeeded = run_rows(conn, version)
    assert (abandoned.status, succeeded.status) == ("failed", "succeeded")
    assert "abandoned" in abandoned.error


def test_the_kills_lose_no_row_of_the_inputs_or_the_published_version(killed: Killed) -> None:
    assert _kept(killed.engine, killed.schema) == killed.kept_before
    assert len(killed.kept_before) == len(INPUTS) + len(schema.OUTPUT_TABLES)
    expect_published(killed.engine, BASE)
