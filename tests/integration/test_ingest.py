"""``recsys-job ingest`` against a real PostgreSQL: every layout, re-ingest, and the printed URL.

Most tests drive the real CLI in-process; the ones about what a user sees on the terminal run the
installed ``recsys-job`` script, so nothing is hidden by the test runner.
"""

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy.engine import URL, make_url

from recsys.storage import schema as tables
from tests.integration._ingest_files import (
    LAYOUTS,
    MOVIES,
    RATINGS,
    USERS,
    contents,
    csv_text,
    ingest,
    release_files,
    table_checksums,
    write_file,
    write_release,
    zip_release,
)

RECSYS_JOB = Path(sys.executable).with_name("recsys-job")
INPUT_TABLES = (tables.movies, tables.users, tables.ratings)


def ok(result: Result) -> Result:
    """The result of a command that must succeed, with its output shown when it did not."""
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in each input table, as the ingest report counts them."""
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in INPUT_TABLES
        }


def nothing_changed(result: Result, engine: sa.Engine) -> None:
    """The report of a re-ingest: every row of every table unchanged, and it says so."""
    for table, n in counts(engine).items():
        assert f"{table}: 0 inserted, 0 updated, {n:,} unchanged" in result.stdout
    assert "nothing changed" in result.stdout


def catalogue_movies() -> list[tuple[object, ...]]:
    return [(m.movie_id, m.title, list(m.genres), m.year) for m in MOVIES]


def catalogue_ratings() -> list[tuple[object, ...]]:
    return [(r.user_id, r.movie_id, r.rating, r.rated_at) for r in RATINGS]


def utc(text: str) -> datetime:
    """An ISO 8601 time as UTC, which is how the expected rows are written."""
    return datetime.fromisoformat(text).astimezone(UTC)


# --- each layout ----------------------------------------------------------------------------


@pytest.mark.mldata
def test_ml100k_release_loads_every_row_and_reloads_as_a_no_op(
    engine: sa.Engine, database_url: URL, schema: str, ml100k: Path
) -> None:
    first = ok(ingest(database_url, schema, "movielens", ml100k))
    assert "ingested ml-100k" in first.stdout
    assert "movies: 1,682 inserted" in first.stdout
    assert "users: 943 inserted" in first.stdout
    assert "ratings: 100,000 inserted" in first.stdout
    assert re.search(r"rows read and merged in \d+\.\d s", first.stdout)
    assert counts(engine) == {"movies": 1682, "users": 943, "ratings": 100_000}
    with engine.connect() as conn:
        movie = conn.execute(sa.select(tables.movies).where(tables.movies.c.movie_id == 1)).one()
        rating = conn.execute(
            sa.select(tables.ratings.c.rating, tables.ratings.c.rated_at).where(
                tables.ratings.c.user_id == 196, tables.ratings.c.movie_id == 242
            )
        ).one()
        user = conn.execute(sa.select(tables.users).where(tables.users.c.user_id == 1)).one()
    assert tuple(movie) == (1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"], 1995)
    assert tuple(rating) == (3.0, datetime.fromtimestamp(881250949, UTC))
    assert tuple(user) == (1, "M", 24, "technician", "85711")

    before = table_checksums(engine, schema)
    again = ok(ingest(database_url, schema, "movielens", ml100k))
    nothing_changed(again, engine)
    assert re.search(r"rows read and merged in \d+\.\d s", again.stdout)
    assert table_checksums(engine, schema) == before


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_release_loads_exactly_its_rows(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path, layout: str, packed: bool
) -> None:
    """Each layout, as a folder or as a GroupLens-style zip with the release in a sub-folder."""
    path = write_release(tmp_path / layout, layout)
    if packed:
        path = zip_release(path, tmp_path / f"{layout}.zip")

    result = ok(ingest(database_url, schema, "movielens", path))

    assert f"ingested {layout}" in result.stdout
    assert contents(engine, tables.movies) == catalogue_movies()
    assert contents(engine, tables.ratings) == catalogue_ratings()
    # ml-latest has no users file: users are known by id only.
    users = (
        [(u.user_id, None, None, None, None) for u in USERS]
        if layout == "ml-latest"
        else [tuple(u) for u in USERS]
    )
    assert contents(engine, tables.users) == users


def test_csv_with_movies_and_users_files(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    ratings = write_file(
        tmp_path / "ratings.csv",
        "user_id,item_id,rating,timestamp\n"
        "7,100,4.5,2024-03-01T12:00:00Z\n"
        "7,200,3,2024-03-02T08:30:00+02:00\n"
        "8,100,0.5,2024-03-03\n",
    )
    movies = write_file(
        tmp_path / "movies.csv",
        'movie_id,title,genres,year\n100,"Heat, The",Action|Crime,1995\n'
        "200,Amélie (2001),(no genres listed),2001\n",
    )
    users = write_file(
        tmp_path / "users.csv",
        "user_id,gender,age,occupation,zip_code\n7,F,31,writer,01234\n8,,,,\n",
    )

    ok(
        ingest(
            database_url, schema, "csv", "--ratings", ratings, "--movies", movies, "--users", users
        )
    )

    assert contents(engine, tables.movies) == [
        (100, "Heat, The", ["Action", "Crime"], 1995),
        (200, "Amélie (2001)", [], 2001),
    ]
    assert contents(engine, tables.users) == [
        (7, "F", 31, "writer", "01234"),
        (8, None, None, None, None),
    ]
    assert contents(engine, tables.ratings) == [
        (7, 100, 4.5, utc("2024-03-01T12:00:00+00:00")),
        (7, 200, 3.0, utc("2024-03-02T06:30:00+00:00")),
        (8, 100, 0.5, utc("2024-03-03T00:00:00+00:00")),
    ]


def test_csv_ratings_alone_get_placeholder_movies_and_bare_users(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    ratings = write_file(
        tmp_path / "ratings.csv",
        "user_id,movie_id,rating,timestamp\n5,42,4,978300760\n6,7,2.5,978300761\n",
    )

    ok(ingest(database_url, schema, "csv", "--ratings", ratings))

    assert contents(engine, tables.movies) == [(7, "Item 7", [], None), (42, "Item 42", [], None)]
    assert contents(engine, tables.users) == [
        (5, None, None, None, None),
        (6, None, None, None, None),
    ]
    assert contents(engine, tables.ratings) == [
        (5, 42, 4.0, datetime.fromtimestamp(978300760, UTC)),
        (6, 7, 2.5, datetime.fromtimestamp(978300761, UTC)),
    ]


@pytest.mark.parametrize(
    ("columns", "time", "rated_at"),
    [
        ("", "", None),
        (",timestamp", ",978300760", datetime.fromtimestamp(978300760, UTC)),
        (",timestamp", ",2001-01-01T00:00:00.25-05:00", utc("2001-01-01T05:00:00.25+00:00")),
    ],
    ids=["no-time", "unix", "iso"],
)
def test_csv_without_rating_column_stores_null_ratings(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    tmp_path: Path,
    columns: str,
    time: str,
    rated_at: datetime | None,
) -> None:
    ratings = write_file(tmp_path / "clicks.csv", f"user_id,item_id{columns}\n1,10{time}\n")

    ok(ingest(database_url, schema, "csv", "--ratings", ratings))

    assert contents(engine, tables.ratings) == [(1, 10, None, rated_at)]


# --- re-ingest ------------------------------------------------------------------------------


def _input(kind: str, folder: Path) -> list[str | Path]:
    """Ingest arguments for one kind of input written into ``folder``."""
    if kind in LAYOUTS:
        return ["movielens", write_release(folder / kind, kind)]
    if kind == "ml-1m.zip":
        return ["movielens", zip_release(write_release(folder / "ml-1m", "ml-1m"), folder / kind)]
    # Sub-microsecond times and missing ratings and attributes: values PostgreSQL rounds or
    # stores as NULL must still compare equal on the second run.
    ratings = write_file(
        folder / "ratings.csv",
        "user_id,item_id,timestamp\n1,10,2001-01-01T00:00:00.1234567Z\n2,10,2001-01-02T00:00:00Z\n",
    )
    users = write_file(folder / "users.csv", "user_id,gender,age\n1,,\n2,M,40\n")
    movies = write_file(folder / "movies.csv", "item_id,title\n10,Untitled\n")
    return ["csv", "--ratings", ratings, "--movies", movies, "--users", users]


@pytest.mark.parametrize("kind", [*LAYOUTS, "ml-1m.zip", "csv"])
def test_reingest_changes_nothing_and_says_so(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path, kind: str
) -> None:
    args = _input(kind, tmp_path)
    ok(ingest(database_url, schema, *args))
    before = table_checksums(engine, schema)

    again = ok(ingest(database_url, schema, *args))

    nothing_changed(again, engine)
    assert table_checksums(engine, schema) == before


def test_changing_one_rating_updates_exactly_that_row(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    folder = write_release(tmp_path / "ml-1m", "ml-1m")
    ok(ingest(database_url, schema, "movielens", folder))
    before = table_checksums(engine, schema)
    changed = release_files("ml-1m")["ratings.dat"].replace("1::20::3::", "1::20::5::")
    write_release(folder, "ml-1m", {"ratings.dat": changed})

    result = ok(ingest(database_url, schema, "movielens", folder))

    assert "ratings: 0 inserted, 1 updated, 4 unchanged" in result.stdout
    assert "movies: 0 inserted, 0 updated, 3 unchanged" in result.stdout
    assert "users: 0 inserted, 0 updated, 3 unchanged" in result.stdout
    assert "nothing changed" not in result.stdout
    after = table_checksums(engine, schema)
    assert {name for name in before if before[name] != after[name]} == {"ratings"}
    expected = [
        (*row[:2], 5.0, *row[3:]) if row[:2] == (1, 20) else row for row in catalogue_ratings()
    ]
    assert contents(engine, tables.ratings) == expected


def test_placeholders_never_overwrite_real_movies_or_users(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    ok(ingest(database_url, schema, "movielens", write_release(tmp_path / "ml-1m", "ml-1m")))
    ratings = write_file(tmp_path / "more.csv", "user_id,item_id,rating\n1,30,2\n9,10,4\n9,99,3\n")

    result = ok(ingest(database_url, schema, "csv", "--ratings", ratings))

    assert "movies: 1 inserted, 0 updated, 2 unchanged" in result.stdout
    assert "users: 1 inserted, 0 updated, 1 unchanged" in result.stdout
    assert contents(engine, tables.movies) == [*catalogue_movies(), (99, "Item 99", [], None)]
    assert contents(engine, tables.users) == [tuple(u) for u in USERS] + [
        (9, None, None, None, None)
    ]


def test_movies_file_replaces_earlier_placeholders(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    ratings = write_file(tmp_path / "ratings.csv", "user_id,item_id\n1,10\n1,20\n")
    ok(ingest(database_url, schema, "csv", "--ratings", ratings))
    movies = write_file(
        tmp_path / "movies.csv",
        csv_text(
            [("movie_id", "title", "genres")] + [(*m[:2], "|".join(m.genres)) for m in MOVIES]
        ),
    )

    result = ok(ingest(database_url, schema, "csv", "--ratings", ratings, "--movies", movies))

    assert "movies: 1 inserted, 2 updated, 0 unchanged" in result.stdout
    assert contents(engine, tables.movies) == catalogue_movies()


# --- which database -------------------------------------------------------------------------


@pytest.fixture
def password_role(engine: sa.Engine, schema: str) -> Iterator[tuple[str, str]]:
    """A login role with a password and what ingest needs in the test schema; dropped after."""
    role, password = f"recsys_pw_{uuid.uuid4().hex[:10]}", f"Secret-{uuid.uuid4().hex}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
    yield role, password
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP OWNED BY {role}"))
        conn.execute(sa.text(f"DROP ROLE {role}"))


def run_job(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user would."""
    return subprocess.run(
        [RECSYS_JOB, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_printed_database_url_masks_the_password(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    tmp_path: Path,
    password_role: tuple[str, str],
) -> None:
    role, password = password_role
    url = database_url.set(username=role, password=password, host="127.0.0.1")
    ratings = write_file(tmp_path / "ratings.csv", "user_id,item_id,rating\n1,10,4\n")

    job = run_job(
        "--database-url",
        url.render_as_string(hide_password=False),
        "--schema",
        schema,
        "ingest",
        "csv",
        "--ratings",
        ratings,
    )

    assert job.returncode == 0, job.stderr
    assert counts(engine)["ratings"] == 1
    assert password not in job.stdout + job.stderr
    assert f"database: postgresql://{role}:***@" in job.stderr


def test_unreachable_database_is_one_line_and_exit_3(tmp_path: Path) -> None:
    password = f"Secret-{uuid.uuid4().hex}"
    ratings = write_file(tmp_path / "ratings.csv", "user_id,item_id\n1,10\n")

    job = run_job(
        "--database-url",
        f"postgresql://someone:{password}@127.0.0.1:1/nowhere",
        "ingest",
        "csv",
        "--ratings",
        ratings,
    )

    assert job.returncode == 3
    assert password not in job.stdout + job.stderr
    assert "Traceback" not in job.stderr
    errors = [line for line in job.stderr.splitlines() if not line.startswith("database: ")]
    assert len(errors) == 1
    assert errors[0].startswith("error: cannot connect to postgresql://someone:***@127.0.0.1:1/")


def test_password_given_as_query_parameter_is_masked(tmp_path: Path) -> None:
    password = f"Secret-{uuid.uuid4().hex}"
    url = make_url(f"postgresql://someone@127.0.0.1:1/nowhere?password={password}")
    ratings = write_file(tmp_path / "ratings.csv", "user_id,item_id\n1,10\n")

    result = ingest(url, "recsys", "csv", "--ratings", ratings)

    assert result.exit_code == 3
    assert password not in result.stdout + result.stderr
