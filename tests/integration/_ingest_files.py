"""Shared pieces of the ingest integration tests: tiny input files, the CLI call, table snapshots.

Every MovieLens layout renders the same small catalogue (``MOVIES``, ``USERS``, ``RATINGS``), so a
test states once which rows the database must hold, whatever layout they arrived in.
"""

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from recsys.ingest.parse.movielens import ML1M_OCCUPATIONS, ML100K_GENRES
from recsys_jobs.cli import main


class Movie(NamedTuple):
    movie_id: int
    title: str
    genres: tuple[str, ...]
    year: int


class User(NamedTuple):
    user_id: int
    gender: str
    age: int
    occupation: str
    zip_code: str


class Rating(NamedTuple):
    user_id: int
    movie_id: int
    rating: float
    timestamp: int

    @property
    def rated_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)


# Genres in ML-100K flag order; ages are ML-1M age-group codes and occupations ML-1M's names, so
# the same values are valid in every layout. The accent tests latin-1 and UTF-8 decoding, the
# comma CSV quoting, and the leading zero that zip codes are kept as text.
MOVIES = (
    Movie(10, "Toy Story (1995)", ("Animation", "Children's", "Comedy"), 1995),
    Movie(20, "American President, The (1995)", ("Comedy", "Drama", "Romance"), 1995),
    Movie(30, "Café Society (1995)", ("Drama",), 1995),
)
USERS = (
    User(1, "F", 25, "artist", "02139"),
    User(2, "M", 56, "programmer", "94043"),
    User(3, "F", 18, "K-12 student", "48067"),
)
RATINGS = (
    Rating(1, 10, 4.0, 978300760),
    Rating(1, 20, 3.0, 978302109),
    Rating(2, 10, 5.0, 978301968),
    Rating(2, 30, 1.0, 978300275),
    Rating(3, 20, 2.0, 978824291),
)
LAYOUTS = ("ml-100k", "ml-1m", "ml-latest")
ENCODING = {"ml-100k": "latin-1", "ml-1m": "latin-1", "ml-latest": "utf-8"}


def _lines(rows: Iterable[Iterable[object]], sep: str) -> str:
    return "".join(sep.join(str(field) for field in row) + "\n" for row in rows)


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV with quoting where needed (the first row is the header)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _flags(genres: tuple[str, ...]) -> str:
    return "|".join("1" if name in genres else "0" for name in ML100K_GENRES)


def release_files(layout: str) -> dict[str, str]:
    """The catalogue as the files of a ``layout`` release, by file name."""
    if layout == "ml-100k":
        return {
            "u.data": _lines(
                ((r.user_id, r.movie_id, int(r.rating), r.timestamp) for r in RATINGS), "\t"
            ),
            "u.item": "".join(
                f"{m.movie_id}|{m.title}|01-Jan-{m.year}|||{_flags(m.genres)}\n" for m in MOVIES
            ),
            "u.user": _lines(
                ((u.user_id, u.age, u.gender, u.occupation, u.zip_code) for u in USERS), "|"
            ),
            "u.genre": _lines(((name, i) for i, name in enumerate(ML100K_GENRES)), "|"),
        }
    if layout == "ml-1m":
        return {
            "ratings.dat": _lines(
                ((r.user_id, r.movie_id, int(r.rating), r.timestamp) for r in RATINGS), "::"
            ),
            "movies.dat": _lines(((m.movie_id, m.title, "|".join(m.genres)) for m in MOVIES), "::"),
            "users.dat": _lines(
                (
                    (u.user_id, u.gender, u.age, ML1M_OCCUPATIONS.index(u.occupation), u.zip_code)
                    for u in USERS
                ),
                "::",
            ),
        }
    return {
        "ratings.csv": csv_text([("userId", "movieId", "rating", "timestamp"), *RATINGS]),
        "movies.csv": csv_text(
            [("movieId", "title", "genres")]
            + [(m.movie_id, m.title, "|".join(m.genres)) for m in MOVIES]
        ),
    }


def write_release(
    folder: Path, layout: str, changes: dict[str, str | bytes | None] | None = None
) -> Path:
    """Write a ``layout`` release into ``folder``; ``changes`` replace files by name (bytes as
    they are, text in the layout's encoding) or leave them out (None)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes | None] = {**release_files(layout), **(changes or {})}
    for name, content in files.items():
        if content is None:
            continue
        data = content if isinstance(content, bytes) else content.encode(ENCODING[layout])
        (folder / name).write_bytes(data)
    return folder


def zip_release(folder: Path, archive: Path) -> Path:
    """Zip ``folder``'s files under a sub-folder named like it, as GroupLens' zips are."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder.name}/", "")
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{folder.name}/{path.name}")
    return archive


def write_file(path: Path, content: str | bytes) -> Path:
    """Write a plain input file (text as UTF-8)."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def ingest(database_url: URL, schema: str, *args: str | Path) -> Result:
    """Run ``recsys-job ingest ARGS`` in-process against ``schema``."""
    url = database_url.render_as_string(hide_password=False)
    command = ["--database-url", url, "--schema", schema, "ingest", *map(str, args)]
    return CliRunner().invoke(main, command)


#: An md5 of the rows of the table aliased ``t``, in a canonical order (of '' when there are none).
ROWS_MD5 = "md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"


def table_checksums(engine: sa.Engine, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of the ordered rows of every table in ``schema``: equal snapshots
    mean equal contents, whatever the tables are."""
    query = f'SELECT count(*), {ROWS_MD5} FROM "{{schema}}"."{{table}}" t'
    tables = sa.inspect(engine).get_table_names(schema=schema)
    with engine.connect() as conn:
        return {
            name: tuple(conn.execute(sa.text(query.format(schema=schema, table=name))).one())
            for name in tables
        }


def contents(engine: sa.Engine, table: sa.Table) -> list[tuple[object, ...]]:
    """Every row of ``table`` (a ``recsys.storage.schema`` table), ordered by primary key."""
    with engine.connect() as conn:
        query = sa.select(table).order_by(*table.primary_key.columns)
        return [tuple(row) for row in conn.execute(query)]
