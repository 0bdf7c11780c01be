"""``recsys-job ingest``: load MovieLens releases, plain CSV files or SQL sources into the input
tables."""

import time
from pathlib import Path

import click
import sqlalchemy as sa

from recsys.errors import InvalidInput
from recsys.ingest.load.parsed import IngestReport, load
from recsys.ingest.parse.csvfile import stream_csv
from recsys.ingest.parse.movielens import input_size, parse_movielens
from recsys.ingest.parse.records import ParsedData
from recsys.ingest.sql.load import Increment, load_sql
from recsys.ingest.sql.source import SourceSpec
from recsys.storage import database
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.progress import progress_bar

_existing_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def ingest() -> None:
    """Load ratings, movies and users (all or nothing; re-running changes nothing)."""


@ingest.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@pass_job
def movielens(job: JobContext, path: Path) -> None:
    """Load a MovieLens release: a folder or .zip of ML-100K, ML-1M or ml-latest(-small)."""
    engine = job.engine()
    started = time.perf_counter()
    with progress_bar(f"reading {path.name}", total=input_size(path), unit="B") as advance:
        data = parse_movielens(path, progress=advance)
    store(engine, data, started)


@ingest.command()
@click.option(
    "--ratings", type=_existing_file, required=True, help="user_id,item_id[,rating][,timestamp]"
)
@click.option("--movies", type=_existing_file, help="movie_id,title[,genres][,year]")
@click.option("--users", type=_existing_file, help="user_id[,gender][,age][,occupation][,zip_code]")
@pass_job
def csv(job: JobContext, ratings: Path, movies: Path | None, users: Path | None) -> None:
    """Load plain CSV files with a header row."""
    engine = job.engine()
    started = time.perf_counter()
    size = sum(p.stat().st_size for p in (ratings, movies, users) if p)
    # The ratings are read as they are loaded, a chunk at a time: one bar, by bytes read.
    with progress_bar(f"loading {ratings.name}", total=size, unit="B") as advance:
        report = load(engine, stream_csv(ratings, movies=movies, users=users, progress=advance))
    _summarise(report, started)


@ingest.command()
@click.option(
    "--ratings", metavar="QUERY", help="A SELECT: user_id, item_id[, rating][, timestamp]."
)
@click.option("--ratings-table", metavar="NAME", help="A table or view with those columns.")
@click.option("--movies", metavar="QUERY", help="A SELECT: movie_id, title[, genres][, year].")
@click.option("--movies-table", metavar="NAME", help="A table or view with those columns.")
@click.option(
    "--users", metavar="QUERY", help="A SELECT: user_id[, gender][, age][, occupation][, zip_code]."
)
@click.option("--users-table", metavar="NAME", help="A table or view with those columns.")
@click.option(
    "--since-last",
    is_flag=True,
    help="Read only ratings whose watermark column is past the last successful ingest's.",
)
@click.option(
    "--watermark",
    metavar="COLUMN",
    help="The ratings column --since-last compares (default: the time column).",
)
@click.option(
    "--mirror",
    is_flag=True,
    help="Delete the ratings of the source's users that the source no longer has.",
)
@click.option(
    "--source-url",
    metavar="URL",
    help="Read the sources from this other database; rows stream across by binary COPY.",
)
@pass_job
def sql(
    job: JobContext,
    ratings: str | None,
    ratings_table: str | None,
    movies: str | None,
    movies_table: str | None,
    users: str | None,
    users_table: str | None,
    since_last: bool,
    watermark: str | None,
    mirror: bool,
    source_url: str | None,
) -> None:
    """Load from tables, views or SELECTs in the same database: the rows move inside the server,
    the query runs read-only; checked and merged as ``ingest csv`` is."""
    specs = [
        _spec(kind, query, table)
        for kind, query, table in (
            ("ratings", ratings, ratings_table),
            ("movies", movies, movies_table),
            ("users", users, users_table),
        )
    ]
    if specs[0] is None:
        raise InvalidInput("give --ratings QUERY or --ratings-table NAME")
    if watermark is not None and not since_last:
        raise InvalidInput("--watermark goes with --since-last")
    started = time.perf_counter()
    increment = Increment(since_last, watermark, mirror)
    engine = job.engine()
    source = None
    if source_url is not None:
        url = database.parse_url(source_url)
        source = database.connect(url, job.schema, timeouts=job.timeouts)
        click.echo(f"source: {database.masked(url)}", err=True)
    try:
        result = load_sql(
            engine, [s for s in specs if s is not None], increment, source_engine=source
        )
    finally:
        if source is not None:
            source.dispose()
    _summarise(result.report, started)
    if result.mirrored is not None:
        click.echo(f"ratings: {result.mirrored:,} deleted (--mirror: no longer in the source)")
    if result.watermark is not None:
        before, after = result.watermark
        click.echo(f"watermark: {before or 'none'} -> {after or 'none'}")


def _spec(kind: str, query: str | None, table: str | None) -> SourceSpec | None:
    if query is not None and table is not None:
        raise InvalidInput(f"give --{kind} or --{kind}-table, not both")
    if query is None and table is None:
        return None
    return SourceSpec(kind, query, table)


def store(engine: sa.Engine, data: ParsedData, started: float) -> None:
    """Load parsed data with a progress bar and print the summary (seconds since ``started``)."""
    total = len(data.ratings) + len(data.movies) + len(data.users)
    with progress_bar("loading", total=total) as advance:
        report = load(engine, data, progress=advance)
    _summarise(report, started)


def _summarise(report: IngestReport, started: float) -> None:
    click.echo(f"ingested {report.layout}: {report.summary()}")
    total = sum(c.rows for c in report.counts)
    click.echo(f"{total:,} rows read and merged in {time.perf_counter() - started:.1f} s")
    if report.erased_again:
        click.echo(
            f"note: {report.erased_again:,} user id(s) erased earlier by forget were ingested "
            "again, as new users"
        )
