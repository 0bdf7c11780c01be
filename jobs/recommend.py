"""``recsys-job recommend``: one user's list, with titles."""

import click
import sqlalchemy as sa

from recsys.storage import user_list as recommending
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option, table


@click.command()
@click.option("--user", "user_id", required=True, type=int, help="User id.")
@click.option("--version", help="A published version.")
@click.option("--alias", help="An alias (default: production, else the latest published).")
@json_option
@pass_job
def recommend(
    job: JobContext, user_id: int, version: str | None, alias: str | None, as_json: bool
) -> None:
    """Show a user's recommendations from a version or an alias."""
    if version and alias:
        raise click.UsageError("give --version or --alias, not both")
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
    via = ""
    if found.alias:
        how = "" if found.resolved_by == "alias" else f" not set: {found.resolved_by}"
        via = f" (alias {found.alias}{how})"
    click.echo(f"user {user_id}, version {found.version}{via}")
    rows = [[r.rank, r.title, r.genres or [], r.score, r.source] for r in found.items]
    click.echo(table(["rank", "title", "genres", "score", "source"], rows))
