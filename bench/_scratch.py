"""A scratch schema for the benches that run the real ``recsys-job`` on real data.

The database is chosen as every command chooses it (``--database-url``, ``RECSYS_DATABASE_URL``,
else the embedded server); children get the URL through ``RECSYS_DATABASE_URL``, not on their
command line, where other users could read it. The schema is dropped afterwards.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from recsys.storage import database


@dataclass(frozen=True)
class Child:
    """A finished ``recsys-job`` process: exit code, wall seconds, and its own peak memory."""

    returncode: int
    seconds: float
    peak_mib: float


@dataclass(frozen=True)
class Scratch:
    target: database.DatabaseTarget
    schema: str

    def engine(self) -> sa.Engine:
        return database.connect(self.target.url, self.schema)

    def job(self, args: Sequence[str], *, quiet: bool = False, check: bool = True) -> Child:
        """Run ``recsys-job --schema SCHEMA ARGS`` to its end.

        Its peak RSS comes from ``wait4`` on this one child: ``RUSAGE_CHILDREN`` would give the
        largest of every child waited for so far, whichever it was.
        """
        url = self.target.url.render_as_string(hide_password=False)
        command = [sys.executable, "-m", "recsys_jobs", "--schema", self.schema, *args]
        output = subprocess.DEVNULL if quiet else None
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env={**os.environ, "RECSYS_DATABASE_URL": url}, stdout=output, stderr=output
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.perf_counter() - started
        if check and process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode, command[3:])
        return Child(process.returncode, seconds, usage.ru_maxrss / 1024)


@contextmanager
def scratch_schema(database_url: str | None) -> Iterator[Scratch]:
    """A fresh schema name on the chosen database ('db upgrade' creates it); dropped after."""
    target = database.resolve(database_url)
    scratch = Scratch(target, f"bench_{uuid.uuid4().hex[:8]}")
    print(f"database: {target.describe()}, scratch schema {scratch.schema}")
    try:
        yield scratch
    finally:
        engine = sa.create_engine(target.url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{scratch.schema}" CASCADE'))
        engine.dispose()
