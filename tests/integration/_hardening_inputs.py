"""Inputs for the bad-input and degenerate-data tests, and the installed ``recsys-job`` run on them.

A ``recsys-job`` process pays its imports: about 1.5 s for an ingest or for options that click
rejects, and about 7 s more (TensorFlow) for a run that reaches ``recsys.pipeline``. Tests
therefore start their processes together, as many at a time as this process may use CPUs.
"""

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.ingest.load.parsed import load
from recsys.ingest.parse.assemble import assemble
from recsys.ingest.parse.records import ratings_frame
from recsys.storage import schema
from tests.integration._run_data import console_script

Args = Sequence[str | Path]
#: (user id, movie id, stars, unix seconds or None when the rating has no time).
Rating = tuple[int, int, float, int | None]
Process = subprocess.CompletedProcess[str]


def job_args(database_url: URL, schema_name: str, *args: str | Path) -> list[str]:
    """``recsys-job`` arguments that point the job at ``schema_name`` of the test database."""
    url = database_url.render_as_string(hide_password=False)
    return ["--database-url", url, "--schema", schema_name, *map(str, args)]


def run_processes(commands: Mapping[str, Args]) -> dict[str, Process]:
    """Run the installed ``recsys-job`` with each entry's arguments, several at a time."""

    def one(args: Args) -> Process:
        command = [str(console_script()), *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        return dict(zip(commands, pool.map(one, commands.values()), strict=True))


def error_lines(stderr: str) -> list[str]:
    """The lines a failed command wrote for its user (click's usage errors start "Error:")."""
    return [line for line in stderr.splitlines() if line.lower().startswith("error: ")]


def load_ratings(engine: sa.Engine, ratings: Sequence[Rating], users: Iterable[int] = ()) -> None:
    """Ingest ``ratings`` (their movies and users derived) and ``users`` without any rating."""
    if ratings:
        user, movie, stars, seconds = zip(*ratings, strict=True)
        rated_at = None
        if seconds[0] is not None:
            rated_at = pd.Series(pd.to_datetime(np.array(seconds, dtype=np.int64), unit="s"))
            rated_at = rated_at.dt.tz_localize("UTC")
        lines = np.arange(1, len(ratings) + 1)
        frame = ratings_frame(np.array(user), np.array(movie), np.array(stars), rated_at, lines)
        load(engine, assemble("csv", frame, {"ratings": "test ratings"}))
    extra = [{"user_id": user_id} for user_id in users]
    if extra:
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.users), extra)
