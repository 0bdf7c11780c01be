"""``recsys-job ingest``: load MovieLens releases or plain CSV files into the input tables."""

import time
from pathlib import Path

import click
import sqlalchemy as sa

from recsys.ingest.csvfile import stream_csv
from recsys.ingest.load import IngestReport, load
from recsys.ingest.movielens import input_size, parse_movielens
from recsys.ingest.records import ParsedData
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
