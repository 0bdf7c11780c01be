"""``recsys-job forget`` against a real PostgreSQL: nothing of the user is left in any table of
the schema, every other row is byte-identical, the audit keeps a salted hash and never the id, a
concurrent reader sees the user whole or not at all, and a later ingest says the id comes back.
"""

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from recsys.storage import schema as tables
from recsys.storage.bulk import schema_of
from recsys_jobs.cli import main
from tests.integration._hardening_runs import launch
from tests.integration._ingest_files import ROWS_MD5, csv_text, ingest, write_file
from tests.integration._published_versions import publish_outputs

#: The user to erase: an id no other value of the schema contains as text.
ERASED = 987654321012
OTHERS = (ERASED - 1, ERASED + 1)
LEFTOVER_RUN = 999999


def forget(database_url: URL, schema: str, *args: str) -> Result:
    url = database_url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, "--schema", schema, "forget", *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def _ratings_file(folder: Path) -> Path:
    rows = [(user, movie, 4) for user in (ERASED, *OTHERS) for movie in (1, 2, 3)]
    return write_file(folder / "ratings.csv", csv_text([("user_id", "item_id", "rating"), *rows]))


@pytest.fixture
def stored(engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path) -> sa.Engine:
    """Ratings of three users; versions v1 and v2 published with their embeddings and lists; a
    run's tables left unattached (as a failed or killed run leaves them) with the same rows."""
    ok(ingest(database_url, schema, "csv", "--ratings", _ratings_file(tmp_path)))
    run_id = 0
    for version in ("v1", "v2"):
        run_id = publish_outputs(engine, version, users=3, first_user=OTHERS[0])
    with engine.begin() as conn:
        for table in (tables.user_embeddings, tables.recommendations):
            name, source = f"{table.name}_r{LEFTOVER_RUN}", f"{table.name}_r{run_id}"
            conn.execute(sa.text(f'CREATE TABLE "{schema}"."{name}" (LIKE "{schema}"."{source}")'))
            conn.execute(
                sa.text(f'INSERT INTO "{schema}"."{name}" SELECT * FROM "{schema}"."{source}"')
            )
    return engine


def _leaf_tables(conn: sa.Connection) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :s AND c.relkind = 'r' ORDER BY 1"
            ),
            {"s": schema_of(conn)},
        ).scalars()
    )


def holding(engine: sa.Engine, user: int) -> dict[str, int]:
    """Rows of every table of the schema whose text holds ``user``'s id, by table."""
    found = {}
    with engine.connect() as conn:
        for name in _leaf_tables(conn):
            query = f'SELECT count(*) FROM "{schema_of(conn)}"."{name}" t WHERE t::text LIKE :id'
            n = conn.execute(sa.text(query), {"id": f"%{user}%"}).scalar_one()
            if n:
                found[name] = n
    return found


def checksums_without(engine: sa.Engine, user: int | None) -> dict[str, tuple[int, str]]:
    """Count and md5 of every table's rows (those not holding ``user``'s id, if given)."""
    where = "" if user is None else f"WHERE t::text NOT LIKE '%{user}%'"
    with engine.connect() as conn:
        return {
            name: tuple(
                conn.execute(
                    sa.text(
                        f'SELECT count(*), {ROWS_MD5} FROM "{schema_of(conn)}"."{name}" t {where}'
                    )
                ).one()
            )
            for name in _leaf_tables(conn)
        }


def test_forget_leaves_nothing_of_the_user_and_every_other_row_as_it_was(
    stored: sa.Engine, database_url: URL, schema: str
) -> None:
    held = holding(stored, ERASED)
    # The user is in the inputs, in both versions' partitions and in the unattached tables.
    assert held["ratings"] == 3 and held["users"] == 1
    assert held[f"recommendations_r{LEFTOVER_RUN}"] == 2
    assert held[f"user_embeddings_r{LEFTOVER_RUN}"] == 1
    assert sum(1 for name in held if name.startswith("recommendations_r")) == 3
    others = checksums_without(stored, ERASED)

    result = ok(forget(database_url, schema, "--user", str(ERASED)))

    assert f"forgot 1 user(s): {sum(held.values())} rows deleted" in result.stdout
    assert holding(stored, ERASED) == {}
    after = checksums_without(stored, None)
    audit = after.pop(tables.erasures.name)
    others.pop(tables.erasures.name)
    assert after == others
    assert audit[0] == 1
    with stored.connect() as conn:
        salt = conn.execute(sa.select(tables.erasure_salt.c.salt)).scalar_one()
        user_hash, rows = conn.execute(
            sa.select(tables.erasures.c.user_hash, tables.erasures.c.rows)
        ).one()
    assert user_hash == hashlib.sha256(salt + ERASED.to_bytes(8, "big")).hexdigest()
    assert rows == held


def test_users_from_a_table_of_erasure_requests(
    stored: sa.Engine, database_url: URL, schema: str
) -> None:
    with stored.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{schema}_requests" (user_id bigint, asked date)'))
        conn.execute(
            sa.text(f'INSERT INTO "{schema}_requests" VALUES (:a, now()), (:b, now())'),
            {"a": ERASED, "b": OTHERS[0]},
        )
    try:
        query = f'SELECT user_id FROM "{schema}_requests"'
        result = ok(forget(database_url, schema, "--users-from", query, "--user", str(ERASED)))
        assert "forgot 2 user(s)" in result.stdout
        assert holding(stored, ERASED) == {} and holding(stored, OTHERS[0]) == {}
        assert holding(stored, OTHERS[1])["ratings"] == 3
    finally:
        with stored.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE "{schema}_requests"'))


def test_a_users_query_that_writes_is_refused_and_nothing_is_erased(
    stored: sa.Engine, database_url: URL, schema: str
) -> None:
    before = checksums_without(stored, None)
    query = f'WITH d AS (DELETE FROM "{schema}".ratings RETURNING user_id) SELECT user_id FROM d'
    result = forget(database_url, schema, "--users-from", query)
    assert result.exit_code == 2 and "must only read" in result.stderr
    assert checksums_without(stored, None) == before


def test_a_later_ingest_of_an_erased_id_is_allowed_and_says_so(
    stored: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    ok(forget(database_url, schema, "--user", str(ERASED)))
    again = ok(ingest(database_url, schema, "csv", "--ratings", _ratings_file(tmp_path)))
    assert "note: 1 user id(s) erased earlier by forget were ingested again" in again.stdout
    assert holding(stored, ERASED) == {"ratings": 3, "users": 1}
    query = f"SELECT {ERASED}::bigint AS user_id, 1 AS item_id"
    by_sql = ok(ingest(database_url, schema, "sql", "--ratings", query))
    assert "note: 1 user id(s) erased earlier" in by_sql.stdout


def _seen(conn: sa.Connection) -> tuple[int, ...]:
    """The user's rows in each table that holds them, read in one statement (one snapshot)."""
    names = [
        tables.ratings.name,
        tables.users.name,
        tables.user_embeddings.name,
        tables.recommendations.name,
        f"recommendations_r{LEFTOVER_RUN}",
        f"user_embeddings_r{LEFTOVER_RUN}",
    ]
    counts = ", ".join(
        f'(SELECT count(*) FROM "{schema_of(conn)}"."{n}" WHERE user_id = :id)' for n in names
    )
    return tuple(conn.execute(sa.text(f"SELECT {counts}"), {"id": ERASED}).one())


def test_a_concurrent_reader_sees_the_user_whole_or_not_at_all(
    stored: sa.Engine, database_url: URL, schema: str
) -> None:
    with stored.connect() as conn:
        whole = _seen(conn)
    assert all(whole)
    url = database_url.render_as_string(hide_password=False)
    job = launch(
        ["--database-url", url, "--schema", schema, "forget", "--user", str(ERASED)],
        fault="forget:commit:pause",
    )
    try:
        job.wait_paused()  # every row deleted, nothing committed
        with stored.connect() as conn:
            conn.execute(sa.text("SET statement_timeout = '5s'"))  # readers are not blocked
            assert _seen(conn) == whole
    finally:
        job.resume()
    assert job.finish().returncode == 0
    with stored.connect() as conn:
        assert _seen(conn) == (0,) * len(whole)
