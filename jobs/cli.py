"""``recsys-job``: the command group, global options and error reporting."""

from typing import Any

import click
import psycopg
import sqlalchemy as sa

from recsys import __version__
from recsys.errors import RecsysError
from recsys.model import tensorflow_logs
from recsys.storage import database
from recsys_jobs.context import JobContext
from recsys_jobs.db import db
from recsys_jobs.demo import demo
from recsys_jobs.forget import forget
from recsys_jobs.grants import grant_reader
from recsys_jobs.ingest import ingest
from recsys_jobs.promote import promote
from recsys_jobs.prune import prune
from recsys_jobs.recommend import recommend
from recsys_jobs.report import report
from recsys_jobs.run import run
from recsys_jobs.similar import similar
from recsys_jobs.versions import compare, list_versions, show


class _Group(click.Group):
    """Turns expected failures into one clear line on stderr and a non-zero exit code; keeps
    TensorFlow's start-up lines out of the output (:mod:`recsys.model.tensorflow_logs`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        tensorflow_logs.quiet_start()  # before any command can import TensorFlow
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RecsysError as exc:
            _fail(ctx, exc, exc.exit_code)
        except (sa.exc.DBAPIError, psycopg.Error) as exc:
            # A connection lost or a timeout mid-command: a line and an exit code, no traceback.
            job = ctx.obj
            error = database.failure(exc, job.url if isinstance(job, JobContext) else None)
            _fail(ctx, error, error.exit_code)


def _fail(ctx: click.Context, error: Exception, exit_code: int) -> None:
    click.echo(f"error: {error}", err=True)
    ctx.exit(exit_code)


@click.group(cls=_Group)
@click.option(
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL (postgresql://user@host:port/db). Default: $RECSYS_DATABASE_URL, "
    "else an embedded PostgreSQL under $RECSYS_HOME.",
)
@click.option(
    "--schema",
    metavar="NAME",
    help="Schema holding every recsys table. Default: $RECSYS_SCHEMA, else 'recsys'.",
)
@click.option(
    "--statement-timeout",
    type=click.FloatRange(min=0),
    envvar="RECSYS_STATEMENT_TIMEOUT",
    metavar="SECONDS",
    help="Cancel any SQL statement that runs longer (0: no limit). "
    "Default: $RECSYS_STATEMENT_TIMEOUT, else the server's setting.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    envvar="RECSYS_LOCK_TIMEOUT",
    default=database.DEFAULT_LOCK_TIMEOUT,
    metavar="SECONDS",
    help="Give up when a statement waits longer for a table lock (0: wait forever). "
    f"Default: $RECSYS_LOCK_TIMEOUT, else {database.DEFAULT_LOCK_TIMEOUT:g}.",
)
@click.version_option(__version__, prog_name="recsys-job")
@click.pass_context
def main(
    ctx: click.Context,
    database_url: str | None,
    schema: str | None,
    statement_timeout: float | None,
    lock_timeout: float,
) -> None:
    """Train LightGCN on ratings in PostgreSQL and publish versioned recommendations."""
    job = JobContext(database_url, schema, database.Timeouts(statement_timeout, lock_timeout))
    ctx.obj = job
    ctx.call_on_close(job.close)


main.add_command(db)
main.add_command(ingest)
main.add_command(demo)
main.add_command(run)
main.add_command(list_versions)
main.add_command(show)
main.add_command(compare)
main.add_command(promote)
main.add_command(prune)
main.add_command(recommend)
main.add_command(similar)
main.add_command(report)
main.add_command(forget)
db.add_command(grant_reader)
