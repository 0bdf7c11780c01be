"""MovieLens releases: layout detection, the three layouts, and every kind of bad input."""

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from recsys.ingest.errors import InputError
from recsys.ingest.parse import source
from recsys.ingest.parse.movielens import detect_layout, input_size, parse_movielens


def flags(*on: int, n: int = 19) -> str:
    return "|".join("1" if i in on else "0" for i in range(n))


# Tiny but complete releases; each bad-input case below edits one file of one of them.
RELEASES: dict[str, dict[str, str]] = {
    "ml-100k": {
        "u.data": "1\t10\t4\t881250949\n1\t20\t3\t881250950\n2\t10\t5\t881250951\n"
        "2\t30\t1\t881250952\n",
        "u.item": f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags(3, 4, 5)}\n"
        f"20|Land Before Time III (1995) (V)||||{flags(3)}\n"
        f"30|unknown|01-Jan-1997|||{flags(0)}\n",
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
    },
    "ml-1m": {
        "ratings.dat": "1::10::4::978300760\n1::20::3::978302109\n2::10::5::978301968\n"
        "2::30::1::978300275\n",
        "movies.dat": "10::Toy Story (1995)::Animation|Children's|Comedy\n"
        "20::Heat (1995)::Action|Crime|Thriller\n30::Café Society (1995)::Drama\n",
        "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
    },
    "ml-latest": {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n"
        "2,10,5.0,964982224\n2,30,0.5,964983815\n",
        "movies.csv": "movieId,title,genres\n10,Toy Story (1995),Adventure|Animation\n"
        '20,"Heat, The (1995)",Action|Crime\n30,Amélie (2001),(no genres listed)\n',
    },
}
ENCODING = {"ml-100k": "latin-1", "ml-1m": "latin-1", "ml-latest": "utf-8"}


def write_release(folder: Path, layout: str, **changes: str | bytes | None) -> Path:
    """Write ``layout``'s tiny release into ``folder``; a change of None leaves a file out."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {**RELEASES[layout], **changes}
    for name, content in files.items():
        if content is None:
            continue
        data = content if isinstance(content, bytes) else content.encode(ENCODING[layout])
        (folder / name).write_bytes(data)
    return folder


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, prefix + path.name)
    return archive


# --- layout detection ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", sorted(RELEASES))
def test_detect_layout_in_directory_subfolder_and_zip(tmp_path: Path, layout: str) -> None:
    folder = write_release(tmp_path / "outer" / "release", layout)
    assert detect_layout(folder) == layout
    assert detect_layout(tmp_path / "outer") == layout  # one sub-folder down
    assert detect_layout(zip_folder(folder, tmp_path / "flat.zip")) == layout
    assert detect_layout(zip_folder(folder, tmp_path / "nested.zip", "ml/")) == layout


def test_zip_parses_with_member_names_as_sources(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "release", "ml-1m")
    archive = zip_folder(folder, tmp_path / "ml-1m.zip", "ml-1m/")
    data = parse_movielens(archive)
    assert data.sources["ratings"] == f"{archive}!ml-1m/ratings.dat"
    assert data.ratings.equals(parse_movielens(folder).ratings)


def test_missing_file_names_path_and_expected_files(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "r", "ml-100k", **{"u.user": None})
    with pytest.raises(InputError) as caught:
        detect_layout(folder)
    assert caught.value.path == str(folder)
    assert "lacks u.user" in str(caught.value)
    assert "u.data, u.item, u.user" in str(caught.value)


def test_no_release_lists_every_layout(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as caught:
        detect_layout(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: no MovieLens release found")
    for name in ("u.data", "ratings.dat", "ratings.csv"):
        assert name in message


def test_two_releases_in_subfolders_is_ambiguous(tmp_path: Path) -> None:
    write_release(tmp_path / "a", "ml-100k")
    write_release(tmp_path / "b", "ml-1m")
    with pytest.raises(InputError, match="several releases, in folders a, b"):
        detect_layout(tmp_path)


@pytest.mark.parametrize("name", ["missing", "plain.txt"])
def test_path_that_is_no_release(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "plain.txt":
        path.write_text("1,2\n")
    with pytest.raises(InputError) as caught:
        detect_layout(path)
    assert caught.value.path == str(path)


# --- parsing each layout ------------------------------------------------------------------


def test_ml100k_values(tmp_path: Path) -> None:
    data = parse_movielens(write_release(tmp_path, "ml-100k"))
    assert data.layout == "ml-100k"
    assert data.ratings["user_id"].tolist() == [1, 1, 2, 2]
    assert data.ratings["rating"].tolist() == [4.0, 3.0, 5.0, 1.0]
    assert data.ratings["rated_at"].iloc[0] == pd.Timestamp(881250949, unit="s", tz="UTC")
    assert data.ratings["line"].tolist() == [1, 2, 3, 4]
    movies = data.movies.set_index("movie_id")
    assert movies.loc[10, "genres"] == ["Animation", "Children's", "Comedy"]
    # The year comes from the title, even before a "(V)"; else from the release date.
    assert movies["year"].tolist() == [1995, 1995, 1997]
    assert data.users["occupation"].tolist() == ["technician", "other"]
    assert data.users["zip_code"].tolist() == ["85711", "94043"]
    assert data.users["age"].tolist() == [24, 53]
    assert data.sources == {
        "ratings": str(tmp_path / "u.data"),
        "movies": str(tmp_path / "u.item"),
        "users": str(tmp_path / "u.user"),
    }


def test_ml100k_genre_names_come_from_u_genre(tmp_path: Path) -> None:
    item = "10|A (1990)||||1|0|1\n20|B (1991)||||0|1|0\n30|C (1992)||||0|0|0\n"
    folder = write_release(
        tmp_path, "ml-100k", **{"u.genre": "Zed|2\nAlpha|0\nMid|1\n\n", "u.item": item}
    )
    genres = parse_movielens(folder).movies["genres"].tolist()
    assert genres == [["Alpha", "Zed"], ["Mid"], []]


def test_ml1m_values(tmp_path: Path) -> None:
    data = parse_movielens(write_release(tmp_path, "ml-1m"))
    assert data.layout == "ml-1m"
    assert data.movies["title"].tolist()[2] == "Café Society (1995)"
    assert data.movies["genres"].tolist()[1] == ["Action", "Crime", "Thriller"]
    assert data.users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert data.users["gender"].tolist() == ["F", "M"]
    assert data.users["age"].tolist() == [1, 56]


def test_ml_latest_values_and_derived_users(tmp_path: Path) -> None:
    data = parse_movielens(write_release(tmp_path, "ml-latest"))
    assert data.layout == "ml-latest"
    assert data.ratings["rating"].tolist() == [4.0, 3.5, 5.0, 0.5]
    assert data.movies["title"].tolist() == [
        "Toy Story (1995)",
        "Heat, The (1995)",
        "Amélie (2001)",
    ]
    assert data.movies["genres"].tolist()[2] == []
    assert data.users["user_id"].tolist() == [1, 2]
    assert data.users["gender"].tolist() == [None, None]
    assert data.users["line"].tolist() == [0, 0]
    assert data.sources["users"] == "derived"


def test_exact_duplicate_rating_is_collapsed(tmp_path: Path) -> None:
    ratings = RELEASES["ml-1m"]["ratings.dat"] + "1::10::4::978300760\n"
    data = parse_movielens(write_release(tmp_path, "ml-1m", **{"ratings.dat": ratings}))
    assert len(data.ratings) == 4


def test_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    ratings = RELEASES["ml-100k"]["u.data"].replace("\n", "\r\n") + "\r\n\r\n"
    data = parse_movielens(write_release(tmp_path, "ml-100k", **{"u.data": ratings}))
    assert data.ratings["line"].tolist() == [1, 2, 3, 4]


def test_utf8_text_in_a_latin1_release_is_read_as_utf8(tmp_path: Path) -> None:
    """A release re-saved as UTF-8, with or without a byte-order mark, keeps its accents."""
    latin1 = parse_movielens(write_release(tmp_path / "latin1", "ml-1m"))
    utf8 = {name: text.encode() for name, text in RELEASES["ml-1m"].items()}
    utf8["ratings.dat"] = b"\xef\xbb\xbf" + utf8["ratings.dat"]
    data = parse_movielens(write_release(tmp_path / "utf8", "ml-1m", **utf8))
    assert data.movies["title"].iloc[2] == "Café Society (1995)"
    for frame in ("ratings", "movies", "users"):
        assert getattr(data, frame).equals(getattr(latin1, frame)), frame


def test_latin1_after_utf8_text_in_one_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first non-ASCII chunk decides a latin-1 file's encoding; a later chunk must agree."""
    movies = "10::Café (1995)::Drama\n20::Heat (1995)::Action\n".encode() + b"30::Caf\xe9::Drama\n"
    folder = write_release(tmp_path, "ml-1m", **{"movies.dat": movies})
    monkeypatch.setattr(source, "CHUNK_BYTES", 24)
    with pytest.raises(InputError) as caught:
        parse_movielens(folder)
    assert (caught.value.message, caught.value.line) == ("bytes are not valid UTF-8", 3)


@pytest.mark.parametrize("damage", ["member data", "central directory"])
def test_damaged_zip_is_bad_input(tmp_path: Path, damage: str) -> None:
    ratings = "".join(f"{u}::10::4::978300760\n" for u in range(1, 3))
    ratings += "".join(f"{u % 2 + 1}::20::3::{978300760 + u}\n" for u in range(3000))
    folder = write_release(tmp_path / "r", "ml-1m", **{"ratings.dat": ratings})
    archive = zip_folder(folder, tmp_path / "ml-1m.zip")
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        member = zf.getinfo("ratings.dat")
    if damage == "member data":
        start = member.header_offset + 30 + len(member.filename) + 100
        data[start : start + 64] = bytes(64)
    else:
        start = data.rfind(b"PK\x01\x02")
        data[start : start + 4] = b"XXXX"
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        parse_movielens(archive)
    assert caught.value.message.startswith("damaged zip archive")
    assert caught.value.path == (
        f"{archive}!ratings.dat" if damage == "member data" else str(archive)
    )


def test_progress_counts_every_byte_across_many_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = "".join(f"{u}::{m}::3::978300760\n" for u in (1, 2) for m in (10, 20, 30))
    folder = write_release(tmp_path, "ml-1m", **{"ratings.dat": lines + "2::99::3::978300760\n"})
    monkeypatch.setattr(source, "CHUNK_BYTES", 32)
    seen: list[int] = []
    with pytest.raises(InputError) as caught:
        parse_movielens(folder, progress=seen.append)
    assert caught.value.line == 7  # numbering carries across chunks
    (folder / "ratings.dat").write_text(lines)
    seen.clear()
    data = parse_movielens(folder, progress=seen.append)
    assert len(data.ratings) == 6
    assert len(seen) > 5
    assert sum(seen) == input_size(folder)


# --- bad input ----------------------------------------------------------------------------


def cases(layout: str, name: str, *edits: tuple) -> list[tuple]:
    return [(layout, name, *edit) for edit in edits]


# Each edit: content appended to the file (or replacing it, if it starts with "="), then the
# expected message, line and value.
BAD_INPUT = [
    *cases(
        "ml-100k",
        "u.data",
        ("3\t10\t4\t881250949\t9\n", "expected 4 fields", 5, "3\t10\t4\t881250949\t9"),
        ("3\t10", "expected 4 fields, found 2", 5, "3\t10"),
        ("x\t10\t4\t881250949\n", "user id is not a number", 5, "x"),
        ("-3\t10\t4\t881250949\n", "user id is negative", 5, -3),
        ("9223372036854775808\t10\t4\t1\n", "user id is larger", 5, 2**63),
        ("2\t20\t6\t881250949\n", "rating is outside", 5, 6),
        ("2\t20\t\t881250949\n", "rating is missing", 5, ""),
        ("2\t20\t3\tyesterday\n", "timestamp is not a number", 5, "yesterday"),
        ("1\t10\t2\t881250949\n", "repeats line 1", 5, (1, 10)),
        ("2\t99\t3\t881250949\n", "movie is not in", 5, 99),
        ("7\t10\t3\t881250949\n", "user is not in", 5, 7),
        ("=", "file is empty", None, None),
    ),
    *cases(
        "ml-100k",
        "u.item",
        (f"10|Other (1990)||||{flags(1)}\n", "movie id repeats line 1", 4, 10),
        (f"40|X (1990)||||{flags(1)}|0\n", "expected 24 fields", 4, f"40|X (1990)||||{flags(1)}|0"),
        (f"40|X (1990)||||{flags(1)[:-1]}2\n", "genre flag is larger", 4, 2),
        (f"40|||||{flags(1)}\n", "title is missing", 4, ""),
    ),
    *cases(
        "ml-100k",
        "u.user",
        ("1|30|F|writer|00000\n", "user id repeats line 1", 3, 1),
        ("3|old|F|writer|00000\n", "age is not a number", 3, "old"),
    ),
    *cases(
        "ml-1m",
        "ratings.dat",
        ("2::20::3::978300760::1\n", "expected 4 fields", 5, "2::20::3::978300760::1"),
        ("2::20::3", "expected 4 fields, found 3", 5, "2::20::3"),
        ("2::2x::3::978300760\n", "movie id is not a number", 5, "2x"),
        ("2::20::0::978300760\n", "rating is outside", 5, 0),
        ("2::20::3::1e30\n", "timestamp is out of range", 5, 1e30),
        ("2::10::4::978301968\n", "repeats line 3", 5, (2, 10)),
        ("2::40::4::978301968\n", "movie is not in", 5, 40),
        ("3::10::4::978301968\n", "user is not in", 5, 3),
        ("3::20::2::978300760\r3::30::2::978300760\n", "carriage return without", 5, None),
        ("=True::10::4::978300760\n", "user id is not a number", 1, "True"),
    ),
    *cases(
        "ml-1m",
        "movies.dat",
        ("20::Heat (1995)::Drama\n", "movie id repeats line 2", 4, 20),
        ("40::Lost\n", "expected 3 fields, found 2", 4, "40::Lost"),
    ),
    *cases(
        "ml-1m",
        "users.dat",
        ("2::F::56::16::70072\n", "user id repeats line 2", 3, 2),
        ("3::F::56::21::70072\n", "occupation code is larger than 20", 3, 21),
        ("=\n\n", "file has no data rows", None, None),
    ),
    *cases(
        "ml-latest",
        "ratings.csv",
        ("3,10,4.0,964982703,x\n", "expected 4 fields", 6, "3,10,4.0,964982703,x"),
        ("2,20", "expected 4 fields, found 2", 6, "2,20"),
        ("2,ten,4.0,964982703\n", "movie id is not a number", 6, "ten"),
        ("2,20,5.5,964982703\n", "rating is outside", 6, 5.5),
        ("2,20,nan,964982703\n", "rating is not a number", 6, "nan"),
        ("2,20,4.0,\n", "timestamp is missing", 6, ""),
        ("1,20,4.0,964981247\n", "repeats line 3", 6, (1, 20)),
        ("1,40,4.0,964981247\n", "movie is not in", 6, 40),
        (
            "=userId,movieId,rating\n1,10,4\n",
            "missing column(s) timestamp",
            1,
            "userId,movieId,rating",
        ),
        ("=userId,movieId,rating,timestamp,tag\n1,10,4,1,x\n", "unknown column", 1, "tag"),
        (
            "=userId,movieId,rating,timestamp\n",
            "no data rows",
            1,
            "userId,movieId,rating,timestamp",
        ),
        ("=", "file is empty", None, None),
    ),
    *cases(
        "ml-latest",
        "movies.csv",
        (b"40,Caf\xe9 (2001),Drama\n", "not valid UTF-8", 5, b"\xe9"),
        ('40,"Open (2001),Drama\n', "bad CSV quoting", 5, '40,"Open (2001),Drama'),
        ('40,"Open\n(2001)",Drama\n', "quoted field runs past", 5, '40,"Open'),
        ("20,Heat (1995),Action\n", "movie id repeats line 3", 5, 20),
    ),
]


@pytest.mark.parametrize(
    ("layout", "name", "edit", "message", "line", "value"),
    BAD_INPUT,
    ids=[f"{c[0]}-{c[1]}-{c[3][:24]}" for c in BAD_INPUT],
)
def test_bad_input_names_file_line_and_value(
    tmp_path: Path,
    layout: str,
    name: str,
    edit: str | bytes,
    message: str,
    line: int | None,
    value: object,
) -> None:
    original = RELEASES[layout][name].encode(ENCODING[layout])
    if isinstance(edit, str):
        replaced = edit.startswith("=")
        edit = edit.removeprefix("=").encode(ENCODING[layout])
    else:
        replaced = False
    folder = write_release(tmp_path, layout, **{name: edit if replaced else original + edit})
    with pytest.raises(InputError) as caught:
        parse_movielens(folder)
    error = caught.value
    text = str(error)
    assert message in error.message
    assert error.path == str(folder / name)
    assert error.line == line
    assert text.startswith(str(folder / name) + (f", line {line}: " if line else ": "))
    if value is not None:
        assert error.value == value
        assert text.endswith(f"(value: {value!r})")


# --- the real ML-100K ---------------------------------------------------------------------


@pytest.mark.mldata
def test_real_ml100k_parses(ml100k: Path) -> None:
    """Every row of the real release (its speed: ``python bench/data_speed.py``)."""
    data = parse_movielens(ml100k)
    assert (len(data.ratings), len(data.movies), len(data.users)) == (100_000, 1682, 943)
    assert data.ratings["rating"].between(1, 5).all()
    assert data.movies["year"].notna().sum() == 1681  # all but "unknown"
    assert set(data.users["gender"]) == {"M", "F"}
