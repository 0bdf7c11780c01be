"""Bad input stops ingest with a precise message and leaves the database exactly as it was.

Each case ingests over a schema already holding a release, so "unchanged" is checked against
real rows, by a checksum of every table. The last test breaks the load inside the transaction,
after movies and users were merged, to show that those merges roll back too.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.ingest.load.parsed import load
from recsys.ingest.parse.records import ParsedData, movies_frame, ratings_frame, users_frame
from tests.integration._ingest_files import (
    ingest,
    release_files,
    table_checksums,
    write_file,
    write_release,
    zip_release,
)

#: Writes a bad input into a folder; returns the ingest arguments and the path the message names.
Writer = Callable[[Path], tuple[list[str | Path], str]]
Checksums = dict[str, tuple[int, str]]


@dataclass(frozen=True)
class Case:
    """A bad input and the line and value its message must show besides the file."""

    write: Writer
    line: int | None
    value: object


def _release(layout: str, name: str, content: str | bytes | None) -> Writer:
    """A release with one file replaced (or left out, for None); the message names ``name``."""

    def write(folder: Path) -> tuple[list[str | Path], str]:
        path = write_release(folder / layout, layout, {name: content})
        return ["movielens", path], str(path / name if content is not None else path)

    return write


def _edited(layout: str, name: str, old: str, new: str) -> Writer:
    """A release whose file ``name`` has ``old`` replaced by ``new``."""
    text = release_files(layout)[name]
    assert old in text
    return _release(layout, name, text.replace(old, new, 1))


def _csv(ratings: str | bytes, culprit: str = "ratings", **others: str | bytes) -> Writer:
    """Plain CSV files, ``ratings.csv`` plus ``movies.csv`` or ``users.csv`` as given; the
    message must name ``culprit``.csv."""

    def write(folder: Path) -> tuple[list[str | Path], str]:
        args: list[str | Path] = ["csv"]
        for option, content in {"ratings": ratings, **others}.items():
            args += [f"--{option}", write_file(folder / f"{option}.csv", content)]
        return args, str(folder / f"{culprit}.csv")

    return write


def _zipped(folder: Path) -> tuple[list[str | Path], str]:
    """An ML-1M zip whose ratings file has a rating of 6 on its fourth line."""
    text = release_files("ml-1m")["ratings.dat"].replace("2::30::1::", "2::30::6::")
    release = write_release(folder / "ml-1m", "ml-1m", {"ratings.dat": text})
    archive = zip_release(release, folder / "ml-1m.zip")
    return ["movielens", archive], f"{archive}!ml-1m/ratings.dat"


def _no_release(folder: Path) -> tuple[list[str | Path], str]:
    (folder / "data").mkdir()
    write_file(folder / "data" / "ratings.txt", "1,10,4\n")
    return ["movielens", folder / "data"], str(folder / "data")


CASES = {
    "wrong-layout-no-release": Case(_no_release, None, None),
    "wrong-layout-release-lacks-file": Case(_release("ml-100k", "u.user", None), None, None),
    "wrong-layout-ml1m-file-as-csv": Case(_csv("1::10::4::978300760\n"), 1, "1::10::4::978300760"),
    "missing-column-ml-latest": Case(
        _release("ml-latest", "ratings.csv", "userId,movieId,rating\n1,10,4.0\n"),
        1,
        "userId,movieId,rating",
    ),
    "missing-column-csv": Case(_csv("user_id,rating\n1,4\n"), 1, "user_id,rating"),
    "non-numeric-id": Case(_edited("ml-1m", "ratings.dat", "2::10::", "x2::10::"), 3, "x2"),
    "non-numeric-id-csv-movies": Case(
        _csv("user_id,item_id\n1,10\n", "movies", movies="item_id,title\n10,A\nten,B\n"), 3, "ten"
    ),
    "rating-out-of-range": Case(
        _edited("ml-latest", "ratings.csv", "2,30,1.0,", "2,30,5.5,"), 5, 5.5
    ),
    "rating-out-of-range-zip": Case(_zipped, 4, 6),
    "conflicting-duplicate-rating": Case(
        _edited("ml-100k", "u.data", "3\t20\t2\t", "1\t10\t2\t"), 5, (1, 10)
    ),
    "conflicting-duplicate-movie": Case(
        _edited("ml-1m", "movies.dat", "30::Café Society", "10::Café Society"), 3, 10
    ),
    "unknown-movie": Case(_edited("ml-1m", "ratings.dat", "3::20::", "3::99::"), 5, 99),
    "unknown-user": Case(
        _csv("user_id,item_id\n1,10\n4,10\n", users="user_id,gender\n1,F\n"), 3, 4
    ),
    "undecodable-bytes": Case(
        _release("ml-latest", "movies.csv", b"movieId,title,genres\n10,T\xff,Drama\n"), 2, b"\xff"
    ),
    "wrong-field-count": Case(
        _edited("ml-100k", "u.user", "2|56|M|programmer|94043", "2|56|M|programmer"),
        2,
        "2|56|M|programmer",
    ),
    "mixed-timestamps": Case(
        _csv("user_id,item_id,timestamp\n1,10,2001-01-01T00:00:00Z\n1,20,978300760\n"),
        3,
        "978300760",
    ),
    "empty-file": Case(_csv(""), None, None),
    "empty-release-file": Case(_release("ml-1m", "movies.dat", ""), None, None),
    "header-only": Case(_csv("user_id,item_id\n"), 1, "user_id,item_id"),
}


@pytest.fixture
def populated(engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path) -> Checksums:
    """The schema holding an ML-1M release; returns the checksums of every table."""
    release = write_release(tmp_path / "loaded" / "ml-1m", "ml-1m")
    result = ingest(database_url, schema, "movielens", release)
    assert result.exit_code == 0, result.stderr
    return table_checksums(engine, schema)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_naming_file_line_and_value_and_changes_nothing(
    engine: sa.Engine,
    database_url: URL,
    schema: str,
    tmp_path: Path,
    populated: Checksums,
    case: Case,
) -> None:
    (tmp_path / "bad").mkdir()
    args, culprit = case.write(tmp_path / "bad")

    result = ingest(database_url, schema, *args)

    assert result.exit_code == 2, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    message = errors[0]
    assert message.startswith(f"error: {culprit}"), message
    if case.line is not None:
        assert f", line {case.line}: " in message, message
    if case.value is not None:
        assert message.endswith(f"(value: {case.value!r})"), message
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert table_checksums(engine, schema) == populated


def test_nul_character_in_text_is_reported_as_bad_input(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path, populated: Checksums
) -> None:
    ratings = write_file(tmp_path / "ratings.csv", "user_id,item_id\n1,10\n")
    movies = write_file(tmp_path / "movies.csv", "item_id,title\n10,Bad\x00Title\n")

    result = ingest(database_url, schema, "csv", "--ratings", ratings, "--movies", movies)

    assert table_checksums(engine, schema) == populated
    assert result.exit_code == 2
    assert f"{movies}, line 2" in result.stderr


def test_failure_inside_the_transaction_rolls_back_every_table(
    engine: sa.Engine, schema: str, populated: Checksums
) -> None:
    """Movies and users merge first; a rating of an unknown movie then fails the ratings
    upsert, and the movie and user changes already made in the transaction must vanish too."""
    lines = [1, 2]
    movies = movies_frame([10, 40], ["Renamed", "New movie"], [[], ["Drama"]], [None, 2020], lines)
    users = users_frame([1, 8], lines, gender=["M", "F"])
    rated_at = pd.Series(pd.to_datetime([978300760, 978300761], unit="s", utc=True))
    ratings = ratings_frame([1, 8], [40, 999], [4.0, 3.0], rated_at, lines)
    data = ParsedData("csv", ratings, movies, users, {})

    with pytest.raises(sa.exc.IntegrityError, match="ratings_movie_fk"):
        load(engine, data)

    assert table_checksums(engine, schema) == populated
