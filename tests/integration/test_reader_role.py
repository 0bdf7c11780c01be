"""``recsys-job db grant-reader``: a login role that reads everything and can change nothing."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors, sql
from sqlalchemy.engine import URL

from tests.integration._published_versions import cli, publish_outputs


@pytest.fixture
def reader(engine: sa.Engine) -> Iterator[str]:
    """A LOGIN role (trust auth: no password), dropped with its privileges afterwards."""
    role = f"reader_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    yield role
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
        conn.exec_driver_sql(f'DROP ROLE "{role}"')


def _connect_as(database_url: URL, role: str, schema: str) -> psycopg.Connection:
    # The host may be a socket directory given as ?host=... (the embedded server).
    host = database_url.host or database_url.query.get("host")
    return psycopg.connect(
        host=host,
        port=database_url.port,
        dbname=database_url.database,
        user=role,
        options=f"-c search_path={schema}",
        autocommit=True,
    )


def test_reader_reads_everything_and_changes_nothing(
    engine: sa.Engine, database_url: URL, schema: str, reader: str
) -> None:
    publish_outputs(engine, "before")
    granted = cli(database_url, schema, "db", "grant-reader", reader)
    assert granted.exit_code == 0, granted.output
    assert f"{reader} may now read schema {schema}" in granted.stdout
    later_run = publish_outputs(engine, "after")  # published after the grant

    with _connect_as(database_url, reader, schema) as conn:
        read = conn.execute
        assert read("SELECT count(*) FROM published_recommendations").fetchone() == (12,)
        assert read("SELECT version FROM production_recommendations LIMIT 1").fetchone() == (
            "after",
        )
        assert read("SELECT count(*) FROM evaluation_vs_baseline").fetchone() == (2,)
        assert read("SELECT count(*) FROM recommendations").fetchone() == (12,)
        assert read("SELECT count(*) FROM model_versions").fetchone() == (2,)
        assert read("SELECT count(*) FROM ratings").fetchone() == (0,)
        # A partition created after the grant, read directly: default privileges cover it.
        partition = sql.Identifier(f"recommendations_r{later_run}")
        assert read(sql.SQL("SELECT count(*) FROM {}").format(partition)).fetchone() == (6,)

        for statement in (
            "INSERT INTO version_aliases (alias, valid_from, version) VALUES ('x', now(), 'after')",
            "DELETE FROM recommendations",
            "UPDATE model_versions SET status = 'failed'",
            "TRUNCATE ratings",
            "CREATE TABLE sneaky (id int)",
            "CREATE VIEW sneaky AS SELECT 1",
            "DROP VIEW alias_history",
            "SELECT salt FROM erasure_salt",  # it would let a guessed id be tested
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                read(statement)

    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            f'SELECT count(*) FROM "{schema}".recommendations'
        ).scalar_one() == 12  # fmt: skip


def test_grant_to_a_missing_role_says_so(engine: sa.Engine, database_url: URL, schema: str) -> None:
    result = cli(database_url, schema, "db", "grant-reader", "nobody_by_that_name")
    assert result.exit_code == 1
    assert "role 'nobody_by_that_name' does not exist" in result.stderr
