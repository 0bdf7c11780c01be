"""Read plain CSV exports: interactions, and optionally their movies and users.

Columns are matched by header name. Unknown columns are rejected rather than ignored, so a
misspelt ``rating`` header cannot silently turn into "no ratings".
"""

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import pandas as pd

from recsys.ingest.errors import InputError
from recsys.ingest.parse import validate
from recsys.ingest.parse.assemble import assemble, rating_rows, streamed
from recsys.ingest.parse.csv_tokenizer import CSV_UTF8, Table, read_table, read_tables
from recsys.ingest.parse.movie_fields import split_genres, title_years
from recsys.ingest.parse.records import ParsedData, StreamedData, movies_frame, users_frame
from recsys.ingest.parse.source import Progress, Source, file_source

_ITEM_IDS = ("movie_id", "item_id")
_MIN_YEAR, _MAX_YEAR = 1, 9999
_MAX_AGE = 150


def parse_csv(
    ratings: Path,
    movies: Path | None = None,
    users: Path | None = None,
    progress: Progress | None = None,
) -> ParsedData:
    """Parse an interactions CSV (``user_id``, ``item_id`` or ``movie_id``, optional ``rating``
    and ``timestamp`` as unix seconds or ISO 8601) with optional movies and users CSVs."""
    chunks = list(_rating_chunks(ratings, progress))
    rows = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
    movie_rows, user_rows, sources = _catalogue(movies, users, progress)
    return assemble("csv", rows, {"ratings": str(ratings), **sources}, movie_rows, user_rows)


def stream_csv(
    ratings: Path,
    movies: Path | None = None,
    users: Path | None = None,
    progress: Progress | None = None,
) -> StreamedData:
    """The files of :func:`parse_csv` for ``load``: movies and users are read now, the ratings
    a chunk at a time as the loader takes them."""
    movie_rows, user_rows, sources = _catalogue(movies, users, progress)
    chunks = _rating_chunks(ratings, progress)
    return streamed("csv", chunks, {"ratings": str(ratings), **sources}, movie_rows, user_rows)


def _rating_chunks(path: Path, progress: Progress | None) -> Iterator[pd.DataFrame]:
    """The ratings file as frames in the ratings schema, a chunk of lines each; the header and
    the form of the timestamps are settled by the first chunk."""
    tables = read_tables(_source(path), CSV_UTF8, progress=progress)
    first = next(tables)
    item = _id_column(first)
    validate.check_header(first, ("user_id", item), ("rating", "timestamp"))
    header = first.header or ()
    rating = "rating" if "rating" in header else None
    time = "timestamp" if "timestamp" in header else None
    times = validate.timestamp_reader(first, time) if time else validate.unix_times
    for table in chain([first], tables):
        yield rating_rows(table, "user_id", item, rating, time, times)


def _catalogue(
    movies: Path | None, users: Path | None, progress: Progress | None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, str]]:
    """The movies and users files given, parsed, and their paths by kind."""
    sources = {}
    movie_rows = user_rows = None
    if movies is not None:
        movie_rows = _movies(_read(movies, ("title", "genres"), progress))
        sources["movies"] = str(movies)
    if users is not None:
        user_rows = _users(_read(users, ("gender", "occupation", "zip_code"), progress))
        sources["users"] = str(users)
    return movie_rows, user_rows, sources


def _source(path: Path) -> Source:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    return file_source(path)


def _read(path: Path, text: tuple[str, ...], progress: Progress | None) -> Table:
    return read_table(_source(path), CSV_UTF8, text=text, progress=progress)


def _id_column(table: Table) -> str:
    """The item id column: ``movie_id`` or ``item_id``, exactly one of them."""
    present = [name for name in _ITEM_IDS if name in (table.header or ())]
    if len(present) != 1:
        problem = "both" if present else "missing column"
        raise InputError(
            f"{problem} {' or '.join(_ITEM_IDS)}: give exactly one item id column",
            table.source,
            1,
            ",".join(table.header or ()),
        )
    return present[0]


def _movies(table: Table) -> pd.DataFrame:
    item = _id_column(table)
    validate.check_header(table, (item, "title"), ("genres", "year"))
    header = table.header or ()
    titles = validate.texts(table, "title", "title", required=True)
    genres = (
        split_genres(validate.texts(table, "genres", "genres", required=False))
        if "genres" in header
        else [[] for _ in range(len(titles))]
    )
    years = (
        validate.optional_ints(table, "year", "year", _MIN_YEAR, _MAX_YEAR)
        if "year" in header
        else title_years(titles)
    )
    ids = validate.ids(table, item, "movie id")
    return movies_frame(ids, titles, genres, years, table.lines)


def _users(table: Table) -> pd.DataFrame:
    optional = ("gender", "age", "occupation", "zip_code")
    validate.check_header(table, ("user_id",), optional)
    header = table.header or ()

    def text(column: str) -> pd.Series | None:
        present = column in header
        return validate.texts(table, column, column, required=False) if present else None

    age = "age" in header
    return users_frame(
        validate.ids(table, "user_id", "user id"),
        table.lines,
        gender=text("gender"),
        age=validate.optional_ints(table, "age", "age", 0, _MAX_AGE) if age else None,
        occupation=text("occupation"),
        zip_code=text("zip_code"),
    )
