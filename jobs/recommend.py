"""``recsys-job recommend``: one user's list, with titles."""

import click
import sqlalchemy as sa

from recsys.scoring import published_recommendations as recommending
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option, table
from recsys_jobs.reading import check_version_or_alias, resolved_from, version_or_alias


@click.command()
@click.option("--user", "user_id", required=True, type=int, help="User id.")
@version_or_alias
@json_option
@pass_job
def recommend(
    job: JobContext, user_id: int, version: str | None, alias: str | None, as_json: bool
) -> None:
    """Show a user's recommendations from a version or an alias."""
    check_version_or_alias(version, alias)
    show_list(job.engine(), user_id, version=version, alias=alias, as_json=as_json)


def show_list(
    engine: sa.Engine,
    user_id: int,
    *,
    version: str | None = None,
    alias: str | None = None,
    as_json: bool = False,
) -> None:
    """Print a user's list from a version or an alias (as a table, or JSON)."""
    with engine.connect() as conn:
        found = recommending.for_user(conn, user_id, version=version, alias=alias)
    if as_json:
        emit_json(found)
        return
    click.echo(f"user {user_id}, {resolved_from(found.version, found.alias, found.resolved_by)}")
    rows = [[r.rank, r.title, r.genres or [], r.score, r.source] for r in found.items]
    click.echo(table(["rank", "title", "genres", "score", "source"], rows))
