"""Read a MovieLens release (ML-100K, ML-1M or ml-latest) from a directory or a .zip.

The layout is recognised by its ratings file; the release's other files must be beside it,
at the top or in one sub-folder (as GroupLens' zips have them).
"""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.ingest.errors import InputError
from recsys.ingest.parse import validate
from recsys.ingest.parse.assemble import assemble, rating_rows
from recsys.ingest.parse.csv_tokenizer import (
    COLONS_LATIN1,
    CSV_UTF8,
    PIPE_LATIN1,
    TAB_LATIN1,
    Table,
    read_table,
)
from recsys.ingest.parse.movie_fields import date_years, split_genres, title_years
from recsys.ingest.parse.records import ParsedData, movies_frame, users_frame
from recsys.ingest.parse.source import Progress, Source, file_source, zip_source

LAYOUTS: dict[str, tuple[str, ...]] = {
    "ml-100k": ("u.data", "u.item", "u.user"),
    "ml-1m": ("ratings.dat", "movies.dat", "users.dat"),
    "ml-latest": ("ratings.csv", "movies.csv"),
}
_OPTIONAL = ("u.genre",)
_WANTED = {name for files in LAYOUTS.values() for name in files} | set(_OPTIONAL)

# The flag order of u.item when u.genre is absent (as ML-100K's u.genre lists it).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# ML-1M's README: users.dat stores occupations as these codes.
ML1M_OCCUPATIONS = (
    "other or not specified", "academic/educator", "artist", "clerical/admin",
    "college/grad student", "customer service", "doctor/health care", "executive/managerial",
    "farmer", "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
    "scientist", "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed",
    "writer",
)  # fmt: skip
_RATING_FIELDS = ["user_id", "movie_id", "rating", "timestamp"]
_USER_FIELDS_100K = ["user_id", "age", "gender", "occupation", "zip_code"]
_USER_FIELDS_1M = ["user_id", "gender", "age", "occupation", "zip_code"]
_MAX_AGE = 150


def detect_layout(path: Path) -> str:
    """The layout of the release at ``path``: "ml-100k", "ml-1m" or "ml-latest"."""
    return _find_release(Path(path))[0]


def input_size(path: Path) -> int:
    """Bytes that ``parse_movielens`` will report through ``progress`` (a progress bar's total)."""
    return sum(source.size for source in _find_release(Path(path))[1].values())


def parse_movielens(path: Path, progress: Progress | None = None) -> ParsedData:
    """Parse the release at ``path``; ``progress`` receives byte counts as files are read."""
    layout, files = _find_release(Path(path))
    parser = {"ml-100k": _parse_100k, "ml-1m": _parse_1m, "ml-latest": _parse_latest}[layout]
    return parser(files, progress)


def _expected() -> str:
    return "; or ".join(f"{', '.join(files)} ({name})" for name, files in LAYOUTS.items())


def _listing(path: Path) -> dict[str, dict[str, Source]]:
    """Release files by folder ("" for the top), at the top and one folder down."""
    folders: dict[str, dict[str, Source]] = {}
    if path.is_dir():
        for entry in sorted(path.iterdir()):
            inner = sorted(entry.iterdir()) if entry.is_dir() else [entry]
            for item in inner:
                if item.is_file() and item.name in _WANTED:
                    folder = "" if item.parent == path else entry.name
                    folders.setdefault(folder, {})[item.name] = file_source(item)
        return folders
    if not path.exists():
        raise InputError("no such file or directory", path)
    if not zipfile.is_zipfile(path):
        raise InputError("expected a MovieLens release: a directory or a .zip", path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise InputError(f"damaged zip archive ({exc})", path) from None
    for info in members:
        *folder, name = info.filename.split("/")
        if not info.is_dir() and len(folder) <= 1 and name in _WANTED:
            folders.setdefault("".join(folder), {})[name] = zip_source(path, info)
    return folders


def _find_release(path: Path) -> tuple[str, dict[str, Source]]:
    folders = _listing(path)
    found = {
        folder: next(name for name, files in LAYOUTS.items() if files[0] in folders[folder])
        for folder in folders
        if any(files[0] in folders[folder] for files in LAYOUTS.values())
    }
    if not found:
        raise InputError(
            f"no MovieLens release found; expected {_expected()} at the top or in one folder",
            path,
        )
    if "" not in found and len(found) > 1:
        raise InputError(f"several releases, in folders {', '.join(sorted(found))}", path)
    folder = "" if "" in found else next(iter(found))
    layout, files = found[folder], folders[folder]
    missing = [name for name in LAYOUTS[layout] if name not in files]
    if missing:
        where: Path | str = path
        if folder:  # in a zip, named like its members: archive.zip!folder
            where = f"{path}!{folder}" if path.is_file() else path / folder
        raise InputError(
            f"{layout} release lacks {', '.join(missing)} (expected {', '.join(LAYOUTS[layout])})",
            where,
        )
    return layout, files


def _genre_names(source: Source | None, progress: Progress | None) -> list[str]:
    """Genre names in u.item flag order, from u.genre when the release has it."""
    if source is None:
        return list(ML100K_GENRES)
    table = read_table(source, PIPE_LATIN1, ["genre", "index"], {"genre"}, progress)
    index = validate.ids(table, "index", "genre index")
    names = validate.texts(table, "genre", "genre", required=True)
    row = validate.first_true(np.sort(index) != np.arange(len(index)))
    if row is not None:
        raise table.error("genre indexes are not 0..n-1 each once", np.argsort(index)[row])
    return names.to_numpy()[np.argsort(index)].tolist()


def _parse_100k(files: dict[str, Source], progress: Progress | None) -> ParsedData:
    genres = _genre_names(files.get("u.genre"), progress)
    data = read_table(files["u.data"], TAB_LATIN1, _RATING_FIELDS, progress=progress)
    ratings = rating_rows(data, "user_id", "movie_id", "rating", "timestamp")

    text = ["title", "release_date", "video_release_date", "url"]
    flags = [f"genre_{i}" for i in range(len(genres))]
    item = read_table(files["u.item"], PIPE_LATIN1, ["movie_id", *text, *flags], text, progress)
    titles = validate.texts(item, "title", "title", required=True)
    matrix = np.column_stack([validate.flags(item, flag, "genre flag") for flag in flags])
    names = np.asarray(genres, dtype=object)
    release_years = date_years(validate.texts(item, "release_date", "release date", False))
    movies = movies_frame(
        validate.ids(item, "movie_id", "movie id"),
        titles,
        [names[row].tolist() for row in matrix],
        title_years(titles).fillna(release_years),
        item.lines,
    )

    user = read_table(
        files["u.user"],
        PIPE_LATIN1,
        _USER_FIELDS_100K,
        ["gender", "occupation", "zip_code"],
        progress,
    )
    users = _user_rows(user, validate.texts(user, "occupation", "occupation", False))
    return assemble(
        "ml-100k",
        ratings,
        {"ratings": data.source, "movies": item.source, "users": user.source},
        movies,
        users,
    )


def _parse_1m(files: dict[str, Source], progress: Progress | None) -> ParsedData:
    data = read_table(files["ratings.dat"], COLONS_LATIN1, _RATING_FIELDS, progress=progress)
    ratings = rating_rows(data, "user_id", "movie_id", "rating", "timestamp")
    item = read_table(
        files["movies.dat"],
        COLONS_LATIN1,
        ["movie_id", "title", "genres"],
        ["title", "genres"],
        progress,
    )
    user = read_table(
        files["users.dat"], COLONS_LATIN1, _USER_FIELDS_1M, ["gender", "zip_code"], progress
    )
    occupations = validate.codes(user, "occupation", "occupation code", ML1M_OCCUPATIONS)
    return assemble(
        "ml-1m",
        ratings,
        {"ratings": data.source, "movies": item.source, "users": user.source},
        _movie_rows(item, "movie_id"),
        _user_rows(user, occupations),
    )


def _parse_latest(files: dict[str, Source], progress: Progress | None) -> ParsedData:
    data = read_table(files["ratings.csv"], CSV_UTF8, progress=progress)
    validate.check_header(data, ("userId", "movieId", "rating", "timestamp"))
    ratings = rating_rows(data, "userId", "movieId", "rating", "timestamp")
    item = read_table(files["movies.csv"], CSV_UTF8, text=["title", "genres"], progress=progress)
    validate.check_header(item, ("movieId", "title", "genres"))
    return assemble(
        "ml-latest",
        ratings,
        {"ratings": data.source, "movies": item.source},
        _movie_rows(item, "movieId"),
    )


def _movie_rows(table: Table, id_column: str) -> pd.DataFrame:
    """Movies with ``title`` and ``|``-separated ``genres`` columns; the year is in the title."""
    titles = validate.texts(table, "title", "title", required=True)
    return movies_frame(
        validate.ids(table, id_column, "movie id"),
        titles,
        split_genres(validate.texts(table, "genres", "genres", required=False)),
        title_years(titles),
        table.lines,
    )


def _user_rows(table: Table, occupations: object) -> pd.DataFrame:
    return users_frame(
        validate.ids(table, "user_id", "user id"),
        table.lines,
        gender=validate.texts(table, "gender", "gender", required=False),
        age=validate.optional_ints(table, "age", "age", 0, _MAX_AGE),
        occupation=occupations,
        zip_code=validate.texts(table, "zip_code", "zip code", required=False),
    )
