"""``recsys-job report``: an HTML page about one published version."""

from pathlib import Path

import click

from recsys_jobs.context import JobContext, pass_job


@click.command()
@click.argument("version")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write report-VERSION.html into.",
)
@pass_job
def report(job: JobContext, version: str, out_dir: Path) -> None:
    """Write a self-contained HTML report on VERSION: training curves, metrics against the
    popularity baseline, and the previously published version beside it."""
    from recsys.report.page import write  # matplotlib loads in a second or so; only this needs it

    with job.engine().connect() as conn:
        path = write(conn, version, out_dir)
    click.echo(f"wrote {path}")
