"""``recsys-job ingest sql`` against a real PostgreSQL: the same rows as ``ingest csv``, bad
queries refused with nothing changed, ``--since-last`` and ``--mirror``.

The sources live in a schema of their own (``shop``), as a data team's tables would.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy.engine import URL

from recsys.storage import database, migrate
from recsys.storage import schema as tables
from tests.integration._ingest_files import (
    MOVIES,
    RATINGS,
    USERS,
    contents,
    csv_text,
    ingest,
    table_checksums,
    write_file,
)

INPUT_TABLES = (tables.movies, tables.users, tables.ratings)
ORDERS = (
    "SELECT customer AS user_id, sku AS item_id, stars AS rating, ordered_at AS rated_at"
    " FROM {shop}.orders"
)


@pytest.fixture
def shop(engine: sa.Engine, schema: str) -> Iterator[str]:
    """A schema ``shop_…`` with the catalogue as a data team might hold it: ``orders`` (other
    column names, times as timestamptz), ``products`` and ``customers``."""
    name = f"shop_{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {name}.orders (customer bigint, sku integer, stars numeric(2,1),"
                " ordered_at timestamptz)"
            )
        )
        conn.execute(
            sa.text(f"INSERT INTO {name}.orders VALUES (:u, :m, :r, to_timestamp(:t))"),
            [{"u": r.user_id, "m": r.movie_id, "r": r.rating, "t": r.timestamp} for r in RATINGS],
        )
        conn.execute(
            sa.text(
                f"CREATE TABLE {name}.products (movie_id bigint, title text, genres text[],"
                " year smallint)"
            )
        )
        conn.execute(
            sa.text(f"INSERT INTO {name}.products VALUES (:i, :t, :g, :y)"),
            [{"i": m.movie_id, "t": m.title, "g": list(m.genres), "y": m.year} for m in MOVIES],
        )
        conn.execute(
            sa.text(
                f"CREATE TABLE {name}.customers (user_id bigint, gender text, age int,"
                " occupation text, zip_code text)"
            )
        )
        conn.execute(
            sa.text(f"INSERT INTO {name}.customers VALUES (:u, :g, :a, :o, :z)"),
            [
                u._asdict()
                | {"u": u.user_id, "g": u.gender, "a": u.age, "o": u.occupation, "z": u.zip_code}
                for u in USERS
            ],
        )
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))


@pytest.fixture
def other_schema(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    """A second migrated schema, for the same data loaded another way."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = database.connect(database_url, name)
    migrate.upgrade(engine, name)
    yield engine, name
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def refused(result: Result) -> str:
    assert result.exit_code == 2, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result.stderr


def inputs(engine: sa.Engine) -> list[list[tuple[object, ...]]]:
    return [contents(engine, table) for table in INPUT_TABLES]


def csv_files(folder: Path) -> list[str]:
    """The catalogue as ``ingest csv`` files (ratings, movies, users options)."""
    ratings = [("user_id", "item_id", "rating", "timestamp"), *RATINGS]
    movies = [("movie_id", "title", "genres", "year")] + [
        (m.movie_id, m.title, "|".join(m.genres), m.year) for m in MOVIES
    ]
    users = [("user_id", "gender", "age", "occupation", "zip_code"), *USERS]
    paths = [
        write_file(folder / f"{name}.csv", csv_text(rows))
        for name, rows in (("ratings", ratings), ("movies", movies), ("users", users))
    ]
    return ["--ratings", *paths[:1], "--movies", paths[1], "--users", paths[2]]


# --- the same rows as ingest csv -------------------------------------------------------------


def test_a_query_and_a_table_load_what_ingest_csv_loads(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    shop: str,
    other_schema: tuple[sa.Engine, str],
    tmp_path: Path,
) -> None:
    ok(ingest(database_url, schema, "csv", *csv_files(tmp_path)))
    from_csv = inputs(engine)
    assert len(from_csv[2]) == len(RATINGS)

    other, name = other_schema
    with other.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW {shop}.interactions AS " + ORDERS.format(shop=shop)))
    query = ok(
        ingest(
            database_url,
            name,
            "sql",
            "--ratings",
            ORDERS.format(shop=shop),
            "--movies-table",
            f"{shop}.products",
            "--users",
            f"SELECT * FROM {shop}.customers",
        )
    )
    assert "ratings: 5 inserted, 0 updated, 0 unchanged" in query.stdout
    assert inputs(other) == from_csv
    again = ok(
        ingest(
            database_url,
            name,
            "sql",
            "--ratings-table",
            f"{shop}.interactions",
            "--movies-table",
            f"{shop}.products",
            "--users-table",
            f"{shop}.customers",
        )
    )
    assert "nothing changed" in again.stdout
    assert inputs(other) == from_csv


def test_a_ratings_query_alone_makes_placeholders_like_csv(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    shop: str,
    other_schema: tuple[sa.Engine, str],
    tmp_path: Path,
) -> None:
    """Implicit feedback: no rating, no time; users and movies derived from the ids."""
    path = write_file(
        tmp_path / "r.csv", csv_text([("user_id", "item_id")] + [r[:2] for r in RATINGS])
    )
    ok(ingest(database_url, schema, "csv", "--ratings", path))
    other, name = other_schema
    query = f"SELECT customer AS user_id, sku AS movie_id FROM {shop}.orders"
    ok(ingest(database_url, name, "sql", "--ratings", query))
    assert inputs(other) == inputs(engine)


# --- bad queries: exit 2, nothing changed ---------------------------------------------------

BAD = {
    "a write": (
        "WITH gone AS (DELETE FROM {shop}.orders RETURNING *)"
        " SELECT customer AS user_id, sku AS item_id FROM gone",
        "must only read",
    ),
    "a function that writes": (
        "SELECT {shop}.take(customer) AS user_id, sku AS item_id FROM {shop}.orders",
        "must only read",
    ),
    "a second statement": (
        "SELECT customer AS user_id, sku AS item_id FROM {shop}.orders) s;"
        " DELETE FROM {shop}.orders; SELECT * FROM (SELECT 1",
        "multiple commands",
    ),
    "a missing column": (
        "SELECT customer AS user_id, stars AS rating FROM {shop}.orders",
        "no column item_id or movie_id",
    ),
    "a misspelt column": (
        "SELECT customer AS user_id, sku AS item_id, stars AS ratng FROM {shop}.orders",
        "unknown column(s) (expected user_id, item_id|movie_id, rating, timestamp|rated_at)"
        " (value: 'ratng')",
    ),
    "a NULL id": (
        "SELECT CASE WHEN sku = 30 THEN NULL ELSE customer END AS user_id, sku AS item_id"
        " FROM {shop}.orders",
        "row with user_id NULL, item_id 30: user_id is missing",
    ),
    "a rating out of range": (
        "SELECT customer AS user_id, sku AS item_id,"
        " CASE WHEN customer = 2 AND sku = 30 THEN 7 ELSE stars END AS rating FROM {shop}.orders",
        "row with user_id 2, item_id 30: rating is outside 0.5..5.0 (value: '7')",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_query_is_refused_and_changes_nothing(
    engine: sa.Engine, database_url: URL, schema: str, shop: str, case: str
) -> None:
    query, message = BAD[case]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE FUNCTION {shop}.take(id bigint) RETURNS bigint LANGUAGE sql AS"
                f" 'DELETE FROM {shop}.orders WHERE false; SELECT id'"
            )
        )
    ok(
        ingest(
            database_url,
            schema,
            "sql",
            "--ratings",
            f"SELECT * FROM ({ORDERS.format(shop=shop)}) o WHERE user_id = 1",
        )
    )
    before = table_checksums(engine, schema), table_checksums(engine, shop)
    error = refused(ingest(database_url, schema, "sql", "--ratings", query.format(shop=shop)))
    assert message in error
    assert (table_checksums(engine, schema), table_checksums(engine, shop)) == before


def test_an_unknown_table_is_refused(database_url: URL, schema: str, engine: sa.Engine) -> None:
    error = refused(ingest(database_url, schema, "sql", "--ratings-table", "nowhere.nothing"))
    assert "no such table or view (value: 'nowhere.nothing')" in error


# --- increments -----------------------------------------------------------------------------


def _add_order(engine: sa.Engine, shop: str, user: int, movie: int, when: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {shop}.orders VALUES (:u, :m, 4, to_timestamp(:t))"),
            {"u": user, "m": movie, "t": when},
        )


def test_since_last_reads_only_rows_past_the_last_ingest(
    engine: sa.Engine, database_url: URL, schema: str, shop: str
) -> None:
    args = ("sql", "--ratings", ORDERS.format(shop=shop), "--since-last")
    first = ok(ingest(database_url, schema, *args))
    assert "ratings: 5 inserted" in first.stdout
    second = ok(ingest(database_url, schema, *args))
    assert "ratings: 0 inserted, 0 updated, 0 unchanged" in second.stdout
    latest = max(r.timestamp for r in RATINGS)
    _add_order(engine, shop, 1, 30, latest + 60)
    _add_order(engine, shop, 3, 10, latest + 120)
    third = ok(ingest(database_url, schema, *args))
    # Only the two new rows were read: none of the five already there counts as unchanged.
    assert "ratings: 2 inserted, 0 updated, 0 unchanged" in third.stdout
    assert len(contents(engine, tables.ratings)) == 7
    with engine.connect() as conn:
        stored = conn.execute(sa.select(tables.ingest_watermarks.c.watermark)).scalar_one()
    assert stored.startswith("2001-01-06")  # 978824291 + 120 s, in the session's time zone


def test_since_last_on_a_named_watermark_column(
    engine: sa.Engine, database_url: URL, schema: str, shop: str
) -> None:
    """A column other than the time (here a sequence number) holds the watermark."""
    query = (
        "SELECT customer AS user_id, sku AS item_id, customer * 1000 + sku AS seq"
        f" FROM {shop}.orders"
    )
    args = ("sql", "--ratings", query, "--since-last", "--watermark", "seq")
    assert "ratings: 5 inserted" in ok(ingest(database_url, schema, *args)).stdout
    nothing = ok(ingest(database_url, schema, *args))
    assert "ratings: 0 inserted, 0 updated, 0 unchanged" in nothing.stdout
    _add_order(engine, shop, 3, 30, 0)
    new = ok(ingest(database_url, schema, *args))
    assert "ratings: 1 inserted, 0 updated, 0 unchanged" in new.stdout
    assert "watermark: 3020 -> 3030" in new.stdout


def test_a_failed_since_last_ingest_leaves_the_watermark(
    engine: sa.Engine, database_url: URL, schema: str, shop: str
) -> None:
    args = ("sql", "--ratings", ORDERS.format(shop=shop), "--since-last")
    ok(ingest(database_url, schema, *args))
    with engine.connect() as conn:
        before = conn.execute(sa.select(tables.ingest_watermarks)).all()
    _add_order(engine, shop, 9, 10, max(r.timestamp for r in RATINGS) + 60)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {shop}.orders SET stars = 9 WHERE customer = 9"))
    assert "rating is outside" in refused(ingest(database_url, schema, *args))
    with engine.connect() as conn:
        assert conn.execute(sa.select(tables.ingest_watermarks)).all() == before


def test_mirror_deletes_the_ratings_the_source_lost(
    engine: sa.Engine, database_url: URL, schema: str, shop: str
) -> None:
    args = ("sql", "--ratings", ORDERS.format(shop=shop))
    ok(ingest(database_url, schema, *args))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {shop}.orders WHERE customer = 2 AND sku = 30"))
    mirrored = ok(ingest(database_url, schema, *args, "--mirror"))
    assert "ratings: 1 deleted (--mirror" in mirrored.stdout
    kept = [(r.user_id, r.movie_id) for r in RATINGS if (r.user_id, r.movie_id) != (2, 30)]
    assert [row[:2] for row in contents(engine, tables.ratings)] == kept


def test_mirror_and_since_last_together_are_refused(
    engine: sa.Engine, database_url: URL, schema: str, shop: str
) -> None:
    args = ("sql", "--ratings", ORDERS.format(shop=shop), "--since-last", "--mirror")
    assert "give one of them" in refused(ingest(database_url, schema, *args))


# --- another database -------------------------------------------------------------------------


@pytest.fixture
def other_database(database_url: URL) -> Iterator[URL]:
    """A database beside the test database, holding the orders as ``public.orders``."""
    name = f"src_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = database_url.set(database=name)
    source = sa.create_engine(url)
    with source.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (customer bigint, sku integer, stars numeric(2,1),"
                " ordered_at timestamptz)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO orders VALUES (:u, :m, :r, to_timestamp(:t))"),
            [{"u": r.user_id, "m": r.movie_id, "r": r.rating, "t": r.timestamp} for r in RATINGS],
        )
    source.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_source_in_another_database_streams_the_same_rows(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    shop: str,
    other_schema: tuple[sa.Engine, str],
    other_database: URL,
) -> None:
    ok(ingest(database_url, schema, "sql", "--ratings", ORDERS.format(shop=shop)))
    other, name = other_schema
    source = other_database.render_as_string(hide_password=False)
    args = ("sql", "--source-url", source, "--ratings", ORDERS.format(shop="public"))
    first = ok(ingest(database_url, name, *args, "--since-last"))
    assert "ratings: 5 inserted" in first.stdout
    assert inputs(other) == inputs(engine)
    again = ok(ingest(database_url, name, *args, "--since-last"))
    assert "ratings: 0 inserted, 0 updated, 0 unchanged" in again.stdout
    writes = "SELECT nextval('public.s') AS user_id, 1 AS item_id"
    with sa.create_engine(other_database).begin() as conn:
        conn.execute(sa.text("CREATE SEQUENCE public.s"))
    error = refused(ingest(database_url, name, "sql", "--source-url", source, "--ratings", writes))
    assert "must only read" in error
