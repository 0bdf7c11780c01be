"""``recsys-job promote``: point an alias at a published version."""

import click

from recsys.versions import aliases
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import cell, emit_json, json_option


@click.command()
@click.argument("version")
@click.option("--alias", default=aliases.DEFAULT_ALIAS, show_default=True, help="Alias to move.")
@json_option
@pass_job
def promote(job: JobContext, version: str, alias: str, as_json: bool) -> None:
    """Point ALIAS at the published VERSION, atomically, keeping the alias history."""
    moved = aliases.promote(job.engine(), version, alias)
    if as_json:
        emit_json(moved)
    elif not moved.changed:
        click.echo(f"{alias} already points to {version} (since {cell(moved.at)})")
    else:
        click.echo(f"{alias}: {moved.previous or '(not set)'} → {version} at {cell(moved.at)}")
