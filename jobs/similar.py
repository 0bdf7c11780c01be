"""``recsys-job similar``: the movies most like one movie, with titles."""

import click

from recsys.scoring import published_similar_items
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option, table
from recsys_jobs.reading import check_version_or_alias, resolved_from, version_or_alias


@click.command()
@click.option("--movie", "movie_id", required=True, type=int, help="Movie id.")
@version_or_alias
@json_option
@pass_job
def similar(
    job: JobContext, movie_id: int, version: str | None, alias: str | None, as_json: bool
) -> None:
    """Show the movies most similar to a movie (cosine of the version's item embeddings)."""
    check_version_or_alias(version, alias)
    with job.engine().connect() as conn:
        found = published_similar_items.for_movie(conn, movie_id, version=version, alias=alias)
    if as_json:
        emit_json(found)
        return
    title = f" ({found.title})" if found.title else ""
    click.echo(
        f"movie {movie_id}{title}, {resolved_from(found.version, found.alias, found.resolved_by)}"
    )
    rows = [[r.rank, r.title, r.genres or [], r.score] for r in found.items]
    click.echo(table(["rank", "title", "genres", "score"], rows))
