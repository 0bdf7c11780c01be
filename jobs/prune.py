"""``recsys-job prune``: drop old published and failed versions; also ``run --keep``'s prune."""

import dataclasses

import click
import psycopg
import sqlalchemy as sa

from recsys.errors import RecsysError
from recsys.storage import database
from recsys.versions import prune as pruning
from recsys.versions.prune import Decision, Outcome
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option, table


@click.command()
@click.option(
    "--keep",
    required=True,
    type=click.IntRange(min=1),
    help="Published versions to keep (the newest); aliased versions are kept as well.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@json_option
@pass_job
def prune(job: JobContext, keep: int, dry_run: bool, as_json: bool) -> None:
    """Remove published versions beyond the newest KEEP, failed and stale versions, and
    output tables of dead runs. A version an alias points to is never removed.

    Removing a version drops its partitions (no row-by-row DELETE) and its registry row; the
    alias history keeps its name.
    """
    engine = job.engine()
    with engine.connect() as conn:
        planned = pruning.plan(conn, keep)
    if dry_run:
        report = {"dry_run": True, **dataclasses.asdict(planned)}
    else:
        outcome = pruning.execute(engine, planned)
        report = {"dry_run": False, "keep": planned.keep, **dataclasses.asdict(outcome)}
    if as_json:
        emit_json(report)
        return
    if dry_run:
        _section("would remove", planned.remove, "nothing to remove")
        _tables("would drop stray tables", planned.stray_tables)
    else:
        _outcome(outcome, "removed", "nothing removed")
    _section("kept", planned.keep, None)


def prune_after_publish(job: JobContext, version: str, keep: int) -> None:
    """``run --keep``: prune as ``prune --keep`` does once ``version`` is published, sparing it.

    The version is committed by then, and a prune that fails cannot take it back; so a database
    error or timeout here is a warning, not the run's exit status: the version stays published,
    and the next ``run --keep`` (or ``prune``) removes what this one left.
    """
    engine = job.engine()
    try:
        with engine.connect() as conn:
            planned = pruning.plan(conn, keep, spare={version})
        outcome = pruning.execute(engine, planned)
    except (RecsysError, sa.exc.DBAPIError, psycopg.Error) as exc:
        error = exc if isinstance(exc, RecsysError) else database.failure(exc, job.url)
        click.echo(
            f"warning: {version} is published, but pruning (--keep {keep}) failed: {error}; "
            "the next run with --keep, or `recsys-job prune`, removes what is left",
            err=True,
        )
        return
    _outcome(outcome, f"pruned (--keep {keep})", f"pruned nothing (--keep {keep})")


def _outcome(outcome: Outcome, title: str, empty: str) -> None:
    _section(title, outcome.removed, empty)
    _section("skipped (changed since listed)", outcome.skipped, None)
    _tables("dropped stray tables", outcome.dropped_tables)


def _section(title: str, decisions: list[Decision], empty: str | None) -> None:
    if not decisions:
        if empty:
            click.echo(empty)
        return
    rows = [[d.version, d.status, d.published_at, d.reason] for d in decisions]
    click.echo(f"{title}:")
    click.echo(table(["version", "status", "published", "reason"], rows))


def _tables(title: str, names: list[str]) -> None:
    if names:
        click.echo(f"{title}: {', '.join(names)}")
