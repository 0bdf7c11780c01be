"""The ways ratings are merged (see ``recsys.ingest.load.rating_merge``) against a real PostgreSQL.

The large ways drop and rebuild constraints; ``large_load=0`` sends even these small loads
through them, so each way is checked for the same rows and counts, for constraints that come
back exactly as they were and valid, for repeats found by file, line and value, and for leaving
nothing behind when a load fails. Files are read in chunks of a few lines, so a load spans many.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from recsys.ingest.errors import InputError
from recsys.ingest.load.parsed import load
from recsys.ingest.load.rating_merge import choose_way
from recsys.ingest.parse import source
from recsys.ingest.parse.csvfile import stream_csv
from recsys.ingest.parse.records import ParsedData, movies_frame, ratings_frame, users_frame
from recsys.storage import database
from recsys.storage import schema as tables
from tests.integration._ingest_files import contents, table_checksums, write_file

HEADER = "user_id,item_id,rating,timestamp\n"
RATINGS = "".join(f"{u},{m},{1 + (u + m) % 5},{978300000 + u * 100 + m}\n" for u in range(1, 9)
                  for m in (10, 20, 30, 40))  # fmt: skip
BIG = 2**63 - 1


def first(n: int) -> str:
    """The first ``n`` lines of RATINGS."""
    return "".join(RATINGS.splitlines(keepends=True)[:n])


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of about three lines, so every file below is staged in many."""
    monkeypatch.setattr(source, "CHUNK_BYTES", 64)


def catalogue(engine: sa.Engine, schema: str) -> dict[str, object]:
    """Definitions of the constraints and indexes of ``ratings`` and whether each is valid."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT conname, pg_get_constraintdef(k.oid), convalidated FROM pg_constraint k"
                " WHERE conrelid = CAST(:table AS regclass)"
                " UNION ALL SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), true"
                " FROM pg_index WHERE indrelid = CAST(:table AS regclass) ORDER BY 1"
            ),
            {"table": f'"{schema}".ratings'},
        ).all()
    return {name: (definition, valid) for name, definition, valid in rows}


def ingest(engine: sa.Engine, path: Path, large_load: int) -> str:
    """Load a ratings file, streamed; returns the ratings counts as the CLI prints them."""
    report = load(engine, stream_csv(path), large_load=large_load)
    (ratings,) = [c for c in report.counts if c.table == "ratings"]
    return f"{ratings.inserted} inserted, {ratings.updated} updated, {ratings.unchanged} unchanged"


@pytest.mark.parametrize("large_load", [10**9, 0], ids=["checked", "rebuild"])
def test_a_load_into_an_empty_table_stores_every_row(
    engine: sa.Engine, schema: str, tmp_path: Path, large_load: int
) -> None:
    before = catalogue(engine, schema)
    path = write_file(tmp_path / "r.csv", HEADER + RATINGS + f"{BIG},{BIG},4.5,0\n")

    assert ingest(engine, path, large_load) == "33 inserted, 0 updated, 0 unchanged"

    rows = contents(engine, tables.ratings)
    assert len(rows) == 33
    assert rows[0][:3] == (1, 10, 2.0)
    assert rows[-1][:3] == (BIG, BIG, 4.5)
    assert catalogue(engine, schema) == before
    assert [m[0] for m in contents(engine, tables.movies)] == [10, 20, 30, 40, BIG]


@pytest.mark.parametrize("large_load", [10**9, 0], ids=["checked", "unchecked"])
def test_a_load_into_a_table_with_rows_updates_what_changed(
    engine: sa.Engine, schema: str, tmp_path: Path, large_load: int
) -> None:
    first = write_file(tmp_path / "a.csv", HEADER + RATINGS)
    ingest(engine, first, 10**9)
    before, definitions = table_checksums(engine, schema), catalogue(engine, schema)
    assert ingest(engine, first, large_load) == "0 inserted, 0 updated, 32 unchanged"
    assert table_checksums(engine, schema) == before

    changed = RATINGS.replace("1,10,2,", "1,10,5,") + "9,50,3,978300000\n"
    second = write_file(tmp_path / "b.csv", HEADER + changed)
    assert ingest(engine, second, large_load) == "1 inserted, 1 updated, 31 unchanged"

    rows = {row[:2]: row[2] for row in contents(engine, tables.ratings)}
    assert (rows[(1, 10)], rows[(9, 50)], len(rows)) == (5.0, 3.0, 33)
    assert catalogue(engine, schema) == definitions


@pytest.mark.parametrize("large_load", [10**9, 0], ids=["checked", "rebuild"])
def test_exact_repeats_across_chunks_count_once(
    engine: sa.Engine, tmp_path: Path, large_load: int
) -> None:
    path = write_file(tmp_path / "r.csv", HEADER + RATINGS + first(3))

    assert ingest(engine, path, large_load) == "32 inserted, 0 updated, 0 unchanged"
    assert len(contents(engine, tables.ratings)) == 32


@pytest.mark.parametrize("large_load", [10**9, 0], ids=["checked", "rebuild"])
def test_a_repeat_with_another_rating_is_named_and_nothing_is_written(
    engine: sa.Engine, schema: str, tmp_path: Path, large_load: int
) -> None:
    ingest(engine, write_file(tmp_path / "first.csv", "user_id,item_id\n100,1\n"), 10**9)
    before = table_checksums(engine, schema)
    text = HEADER + RATINGS + "3,30,1,978300330\n" + first(2)  # 3,30 is line 12 (rating 2)
    path = write_file(tmp_path / "r.csv", text)

    with pytest.raises(InputError) as caught:
        ingest(engine, path, large_load)

    error = caught.value
    assert (error.path, error.line, error.value) == (str(path), 34, (3, 30))
    assert "rating of this user for this movie repeats line 12 with different values" in str(error)
    assert table_checksums(engine, schema) == before


def test_a_bad_line_late_in_a_file_leaves_nothing_behind(
    engine: sa.Engine, schema: str, tmp_path: Path
) -> None:
    ingest(engine, write_file(tmp_path / "first.csv", HEADER + first(4)), 10**9)
    before = table_checksums(engine, schema)
    path = write_file(tmp_path / "r.csv", HEADER + RATINGS + "9,10,7,978300000\n")

    with pytest.raises(InputError, match="rating is outside") as caught:
        ingest(engine, path, 0)

    assert caught.value.line == 34
    assert table_checksums(engine, schema) == before


def test_a_broken_foreign_key_fails_the_large_way_and_rolls_back(
    engine: sa.Engine, schema: str
) -> None:
    """Placeholders make every parsed input consistent; a hand-built one that is not must still
    be stopped by the foreign key, rebuilt or not, and leave the tables as they were."""
    lines = [1, 2]
    movies = movies_frame([10, 40], ["Ten", "Forty"], [[], []], [None, None], lines)
    users = users_frame([1, 2], lines)
    first = ratings_frame([1, 2], [10, 40], [4.0, 3.0], None, lines)
    load(engine, ParsedData("csv", first, movies, users, {}))
    before, definitions = table_checksums(engine, schema), catalogue(engine, schema)
    broken = ratings_frame([1, 2], [40, 999], [4.0, 3.0], None, lines)

    with pytest.raises(sa.exc.IntegrityError, match="ratings_movie_fk"):
        load(engine, ParsedData("csv", broken, movies, users, {}), large_load=0)

    assert table_checksums(engine, schema) == before
    assert catalogue(engine, schema) == definitions


def test_which_way_a_load_takes(engine: sa.Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        assert choose_way(conn, 10, large_load=100) == "checked"
        assert choose_way(conn, 100, large_load=100) == "rebuild"
    ingest(engine, write_file(tmp_path / "r.csv", HEADER + RATINGS), 10**9)
    with engine.begin() as conn:
        assert choose_way(conn, 100, large_load=100) == "unchecked"


@pytest.fixture
def other_role(engine: sa.Engine, database_url: sa.URL, schema: str) -> Iterator[sa.Engine]:
    """An engine of a role that may write the tables but does not own them."""
    role = f"recsys_writer_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
    writer = database.connect(database_url.set(username=role), schema)
    yield writer
    writer.dispose()
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP OWNED BY {role}"))
        conn.execute(sa.text(f"DROP ROLE {role}"))


def test_a_role_that_does_not_own_the_tables_takes_the_checked_way(
    engine: sa.Engine, other_role: sa.Engine, tmp_path: Path
) -> None:
    with other_role.begin() as conn:
        assert choose_way(conn, 100, large_load=0) == "checked"
    path = write_file(tmp_path / "r.csv", HEADER + RATINGS)
    assert ingest(other_role, path, 0) == "32 inserted, 0 updated, 0 unchanged"
