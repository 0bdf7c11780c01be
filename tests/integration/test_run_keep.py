"""``recsys-job run --keep N``: prune after a successful publish, with ``prune``'s rules.

Never the version just published (even when another version's publish began after it but
committed first), never an aliased one; a prune that fails leaves the new version published and
the run's exit status 0, with a warning.
"""

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.storage import schema as tables
from recsys.versions import prune, registry
from tests.integration._hardening_runs import database_args, launch
from tests.integration._published_versions import cli, publish_outputs
from tests.integration._run_data import (
    FAST_OPTIONS,
    expect_published,
    populate,
    run_tables,
    version_row,
)


@pytest.fixture
def older(engine: sa.Engine, database_url: URL, schema: str) -> Iterator[dict[str, int]]:
    """Ratings to train on; published a, b, c (oldest first; production → a) and failed f.
    Yields the published versions' run ids."""
    populate(engine)
    runs = {name: publish_outputs(engine, name) for name in ("a", "b", "c")}
    claim = registry.acquire(engine, "f", replace=False)
    registry.start(engine, claim, {})
    registry.mark_failed(engine, claim, "RuntimeError: boom")
    claim.release()
    assert cli(database_url, schema, "promote", "a").exit_code == 0
    yield runs


def _names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(tables.model_versions.c.name)).scalars())


def test_run_keep_prunes_after_publishing(
    older: dict[str, int], engine: sa.Engine, database_url: URL, schema: str
) -> None:
    args = ("run", "--model-version", "new", "--keep", "2", *FAST_OPTIONS)
    result = cli(database_url, schema, *args)
    assert result.exit_code == 0, result.output
    assert "published new" in result.stdout
    pruned = result.stdout[result.stdout.index("pruned (--keep 2):") :].splitlines()
    assert sorted(line.split()[0] for line in pruned[2:]) == ["b", "f"]

    expect_published(engine, "new")
    assert _names(engine) == ["a", "c", "new"]  # a: aliased; c, new: the newest two
    with engine.connect() as conn:
        assert run_tables(conn, older["b"]) == []
        assert len(run_tables(conn, older["a"])) == len(tables.OUTPUT_TABLES)

    again = cli(
        database_url, schema, "run", "--model-version", "newer", "--keep", "5", *FAST_OPTIONS
    )
    assert again.exit_code == 0, again.output
    assert "pruned nothing (--keep 5)" in again.stdout


def test_keep_spares_the_version_the_run_published_even_when_another_counts_as_newer(
    older: dict[str, int], engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """``late`` begins publishing while the run stands at ``publish:before`` (its publish
    transaction began already) and commits first: its ``published_at`` is the later one, so
    among the newest 1 published is ``late``, not the run's own version, which must stay."""
    run_args = [*database_args(database_url, schema), "run", "--model-version", "new"]
    job = launch([*run_args, "--keep", "1", *FAST_OPTIONS], fault="publish:before:pause")
    try:
        job.wait_paused()
        publish_outputs(engine, "late")
    finally:
        job.resume()
    result = job.finish()
    assert result.returncode == 0, result.stderr
    assert _names(engine) == ["a", "late", "new"]
    with engine.connect() as conn:
        published = {name: version_row(conn, name).published_at for name in ("late", "new")}
    assert published["late"] > published["new"]
    assert "pruned (--keep 1):" in result.stdout
    with engine.connect() as conn:
        kept = prune.plan(conn, 1, spare={"new"}).keep
        assert {d.version: d.reason for d in kept}["new"] == "just published by this run"
        assert "new" in {d.version for d in prune.plan(conn, 1).remove}  # without sparing it


def test_a_failed_prune_leaves_the_version_published(
    older: dict[str, int], engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """Another session holds b's registry row, so removing b waits past the lock timeout. The
    publish committed before the prune began: the run warns and exits 0; b is left for later."""
    versions = tables.model_versions
    with engine.connect() as holder:
        holder.execute(sa.select(versions.c.name).where(versions.c.name == "b").with_for_update())
        result = cli(
            database_url,
            schema,
            "--lock-timeout",
            "1",
            "run",
            "--model-version",
            "new",
            "--keep",
            "1",
            *FAST_OPTIONS,
        )
        holder.rollback()
    assert result.exit_code == 0, result.output
    assert "published new" in result.stdout
    assert "warning: new is published, but pruning (--keep 1) failed: database timeout" in (
        result.stderr
    )
    expect_published(engine, "new")
    assert _names(engine) == ["a", "b", "f", "new"]  # c went first; b stopped the prune

    done = json.loads(cli(database_url, schema, "prune", "--keep", "1", "--json").stdout)
    assert sorted(d["version"] for d in done["removed"]) == ["b", "f"]
    assert _names(engine) == ["a", "new"]
