"""Plain CSV input: columns by header, optional movies and users files, and bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.ingest.errors import InputError
from recsys.ingest.parse import source
from recsys.ingest.parse.csvfile import parse_csv
from recsys.ingest.parse.records import ParsedData, derived_movies, derived_users, ratings_frame

RATINGS = (
    "user_id,item_id,rating,timestamp\n1,10,4,881250949\n1,20,3.5,881250950\n2,10,5,881250951\n"
)
MOVIES = (
    "movie_id,title,genres,year\n10,Toy Story (1995),Animation|Comedy,1995\n"
    '20,"Heat, The (1995)",Action,\n'
)
USERS = "user_id,gender,age,occupation,zip_code\n1,M,24,technician,01234\n2,,,,\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_ratings_only_derives_movies_and_users(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", RATINGS)
    data = parse_csv(path)
    assert data.layout == "csv"
    assert data.ratings["movie_id"].tolist() == [10, 20, 10]
    assert data.ratings["rating"].tolist() == [4.0, 3.5, 5.0]
    assert data.ratings["rated_at"].iloc[2] == pd.Timestamp(881250951, unit="s", tz="UTC")
    assert data.ratings["line"].tolist() == [2, 3, 4]
    assert data.movies["title"].tolist() == ["Item 10", "Item 20"]
    assert data.movies["genres"].tolist() == [[], []]
    assert data.users["user_id"].tolist() == [1, 2]
    assert data.sources == {"ratings": str(path), "movies": "derived", "users": "derived"}


def test_movie_id_column_and_no_rating_or_time(tmp_path: Path) -> None:
    data = parse_csv(write(tmp_path, "r.csv", "movie_id,user_id\n10,1\n20,1\n"))
    assert data.ratings["rating"].isna().all()
    assert data.ratings["rated_at"].isna().all()
    assert data.ratings["user_id"].tolist() == [1, 1]


def test_iso_timestamps(tmp_path: Path) -> None:
    text = "user_id,item_id,timestamp\n1,10,2020-01-02T03:04:05Z\n1,11,2020-01-02 05:04:05+02:00\n"
    times = parse_csv(write(tmp_path, "r.csv", text + "1,12,2020-01-03\n")).ratings["rated_at"]
    assert times.iloc[0] == times.iloc[1] == pd.Timestamp("2020-01-02 03:04:05", tz="UTC")
    assert times.iloc[2] == pd.Timestamp("2020-01-03", tz="UTC")


def test_bom_crlf_quotes_and_blank_lines(tmp_path: Path) -> None:
    text = '\ufeffuser_id,item_id,rating\r\n"1","10","4"\r\n\r\n2,10,5\r\n\r\n'
    data = parse_csv(write(tmp_path, "r.csv", text))
    assert data.ratings["user_id"].tolist() == [1, 2]
    assert data.ratings["line"].tolist() == [2, 4]


def test_utf16_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "user_id,item_id\n1,10\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16") as caught:
        parse_csv(path)
    assert (caught.value.path, caught.value.line) == (str(path), 1)


def test_movies_and_users_files(tmp_path: Path) -> None:
    data = parse_csv(
        write(tmp_path, "r.csv", RATINGS),
        movies=write(tmp_path, "m.csv", MOVIES + "30,Unrated (2001),,\n"),
        users=write(tmp_path, "u.csv", USERS),
    )
    assert data.movies["title"].tolist() == [
        "Toy Story (1995)",
        "Heat, The (1995)",
        "Unrated (2001)",
    ]
    assert data.movies["genres"].tolist() == [["Animation", "Comedy"], ["Action"], []]
    assert data.movies["year"].tolist() == [1995, pd.NA, pd.NA]  # the year column wins
    assert data.users["zip_code"].tolist() == ["01234", None]
    assert data.users["gender"].tolist() == ["M", None]
    assert data.users["age"].tolist() == [24, pd.NA]
    assert data.sources["movies"] == str(tmp_path / "m.csv")


def test_movie_years_from_titles_without_a_year_column(tmp_path: Path) -> None:
    movies = write(tmp_path, "m.csv", "item_id,title\n10,Toy Story (1995)\n20,Heat\n")
    data = parse_csv(write(tmp_path, "r.csv", RATINGS), movies=movies)
    assert data.movies["year"].tolist() == [1995, pd.NA]
    assert data.movies["genres"].tolist() == [[], []]


def test_users_file_with_some_columns(tmp_path: Path) -> None:
    users = write(tmp_path, "u.csv", "user_id,gender\n1,F\n2,M\n")
    data = parse_csv(write(tmp_path, "r.csv", RATINGS), users=users)
    assert data.users["gender"].tolist() == ["F", "M"]
    assert data.users["age"].isna().all()


def test_exact_duplicates_collapse(tmp_path: Path) -> None:
    data = parse_csv(write(tmp_path, "r.csv", RATINGS + "1,20,3.5,881250950\n"))
    assert len(data.ratings) == 3


def test_quoted_and_plain_chunks_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [f"{u},{m},3,88125095{m % 10}" for u in range(1, 9) for m in range(10, 15)]
    rows[20] = '"5","15","3","881250955"'
    monkeypatch.setattr(source, "CHUNK_BYTES", 40)
    text = "user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n8,99,x,1\n"
    with pytest.raises(InputError) as caught:
        parse_csv(write(tmp_path, "r.csv", text))
    assert (caught.value.line, caught.value.value) == (len(rows) + 2, "x")
    data = parse_csv(write(tmp_path, "r.csv", text.replace("8,99,x,1\n", "")))
    assert data.ratings["line"].tolist() == list(range(2, len(rows) + 2))
    assert data.ratings["movie_id"].iloc[20] == 15


def test_parsed_data_rejects_a_wrong_schema() -> None:
    ratings = ratings_frame(np.array([1]), np.array([2]), None, None, np.array([1]))
    movies, users = derived_movies(ratings), derived_users(ratings)
    ParsedData("csv", ratings, movies, users, {})
    with pytest.raises(TypeError, match="rating"):
        ParsedData("csv", ratings.astype({"rating": object}), movies, users, {})
    with pytest.raises(ValueError, match="columns"):
        ParsedData("csv", ratings, movies.drop(columns="year"), users, {})


def test_input_error_text_leaves_out_missing_parts() -> None:
    assert str(InputError("bad", "a.csv", 3, np.int64(5))) == "a.csv, line 3: bad (value: 5)"
    assert str(InputError("bad", "a.csv")) == "a.csv: bad"
    assert str(InputError("bad", line=2, value="x")) == "line 2: bad (value: 'x')"
    assert str(InputError("bad")) == "bad"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        parse_csv(tmp_path / "absent.csv")


def cases(name: str, *edits: tuple) -> list[tuple]:
    return [(name, *edit) for edit in edits]


# Each edit: content appended to the file (or replacing it, if it starts with "="), then the
# expected message, line and value.
BAD_INPUT = [
    *cases(
        "ratings.csv",
        ("=item_id,rating\n10,4\n", "missing column(s) user_id", 1, "item_id,rating"),
        ("=user_id,rating\n1,4\n", "missing column movie_id or item_id", 1, "user_id,rating"),
        ("=user_id,item_id,movie_id\n1,10,10\n", "both movie_id or item_id", 1, None),
        ("=user_id,item_id,score\n1,10,4\n", "unknown column(s)", 1, "score"),
        ("=user_id,item_id,rating,rating\n1,10,4,4\n", "repeated column(s)", 1, "rating"),
        ("2,20,4,881250949,9\n", "expected 4 fields, found 5", 5, "2,20,4,881250949,9"),
        ("2,20", "expected 4 fields, found 2", 5, "2,20"),
        ('2,"20,4\n', "bad CSV quoting", 5, '2,"20,4'),
        ("u2,20,4,881250949\n", "user id is not a number", 5, "u2"),
        ("2,-20,4,881250949\n", "movie id is negative", 5, -20),
        ("2,20.5,4,881250949\n", "movie id is not a whole number", 5, 20.5),
        ("2,18446744073709551616,4,1\n", "movie id is larger than", 5, 18446744073709551616),
        ("2,20,0.4,881250949\n", "rating is outside 0.5..5.0", 5, 0.4),
        ("2,20,,881250949\n", "rating is missing", 5, ""),
        ("2,20,good,881250949\n", "rating is not a number", 5, "good"),
        ("2,20,4,2020-01-01\n", "timestamp is not a number", 5, "2020-01-01"),
        ("2,20,4,1e12\n", "timestamp is out of range", 5, 10**12),
        ("1,20,4,881250950\n", "repeats line 3 with different values", 5, (1, 20)),
        ("2,30,4,881250950\n", "movie is not in", 5, 30),
        ("3,20,4,881250950\n", "user is not in", 5, 3),
        (b"2,20,4,881250949 \xff\n", "not valid UTF-8", 5, b"\xff"),
        ("=", "file is empty", None, None),
        ("=user_id,item_id\r\n\r\n", "file has no data rows", 1, "user_id,item_id"),
        ("=\n1,10\n", "header line is empty", 1, ""),
        ("=user_id;item_id\n1;10\n", "fields look separated by ';'", 1, "user_id;item_id"),
        ("=user_id,item_id\nTrue,10\nFalse,20\n", "user id is not a number", 2, "True"),
        ("2,30,4,881250952\r2,40,4,881250953\n", "carriage return without", 5, None),
    ),
    *cases(
        "ratings.csv",
        ("=user_id,item_id,timestamp\n1,10,2020-01-01\n1,20,later\n", "not ISO 8601", 3, "later"),
        ("=user_id,item_id,timestamp\n1,10,2020-01-01\n1,20,\n", "timestamp is missing", 3, ""),
    ),
    *cases(
        "movies.csv",
        ("=movie_id,genres\n10,Drama\n", "missing column(s) title", 1, "movie_id,genres"),
        ("=movie_id,title,rating\n10,A,4\n", "unknown column(s)", 1, "rating"),
        ("10,Toy Story (1995),Comedy,1995\n", "movie id repeats line 2", 4, 10),
        ("30,,Comedy,1995\n", "title is missing", 4, ""),
        ("30,Up,Comedy,soon\n", "year is not a number", 4, "soon"),
        ("30,Up,Comedy,-1\n", "year is below 1", 4, "-1"),  # quoted file: values stay text
    ),
    *cases(
        "users.csv",
        ("2,F,30,,\n", "user id repeats line 3", 4, 2),
        ("3,F,-30,,\n", "age is negative", 4, -30),
        ("=user_id,name\n1,Ann\n", "unknown column(s)", 1, "name"),
    ),
]


@pytest.mark.parametrize(
    ("name", "edit", "message", "line", "value"),
    BAD_INPUT,
    ids=[f"{c[0]}-{c[2][:28]}" for c in BAD_INPUT],
)
def test_bad_input_names_file_line_and_value(
    tmp_path: Path, name: str, edit: str | bytes, message: str, line: int | None, value: object
) -> None:
    files = {"ratings.csv": RATINGS, "movies.csv": MOVIES, "users.csv": USERS}
    original = files[name].encode()
    replaced = isinstance(edit, str) and edit.startswith("=")
    edit = edit.removeprefix("=").encode() if isinstance(edit, str) else edit
    files[name] = edit if replaced else original + edit
    paths = {key: write(tmp_path, key, content) for key, content in files.items()}
    with pytest.raises(InputError) as caught:
        parse_csv(paths["ratings.csv"], paths["movies.csv"], paths["users.csv"])
    error = caught.value
    assert message in error.message
    assert error.path == str(paths[name])
    assert error.line == line
    assert str(error).startswith(str(paths[name]) + (f", line {line}: " if line else ": "))
    if value is not None:
        assert error.value == value
        assert str(error).endswith(f"(value: {value!r})")
