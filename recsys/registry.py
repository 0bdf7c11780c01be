"""The version registry: who may write a version, and how its status moves.

A run *claims* a version name before doing any work: it takes a session-level advisory lock keyed
on the name (held on a connection of its own for the whole run) and records itself in
``version_runs``. A second run of the same name fails the lock at once; a run that died releases it
with its connection, which is how a ``running`` row with no live owner is recognised as stale.

Status of ``model_versions``: a new name goes running → published | failed. Re-running a failed or
stale name needs no ``--replace``; replacing a published one keeps it published (and readable)
until the new run's outputs are swapped in, and a failed replacement leaves it untouched.
"""

import os
import re
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from recsys import schema
from recsys.bulk import schema_of
from recsys.errors import RecsysError, VersionConflict

_NAME = re.compile(schema.VERSION_NAME_PATTERN)


def validate_name(name: str) -> str:
    """Reject names the registry's CHECK constraint would, before anything is written."""
    if not _NAME.fullmatch(name):
        raise RecsysError(
            f"version name {name!r} is not allowed: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _lock_text(conn: sa.Connection, version: str) -> str:
    return f"recsys:{schema_of(conn)}:{version}"


def _lock_key(conn: sa.Connection, version: str) -> sa.ColumnElement[int]:
    """The advisory-lock key of a version: schema-qualified so schemas never collide."""
    return sa.func.hashtextextended(_lock_text(conn, version), 0)


@dataclass
class Claim:
    """A version held by this process; release() when the run ends, however it ends."""

    version: str
    run_id: int
    replacing: bool
    lock: sa.Connection

    def release(self) -> None:
        try:
            self.lock.execute(
                sa.select(sa.func.pg_advisory_unlock(_lock_key(self.lock, self.version)))
            )
        finally:
            self.lock.close()


def claim(engine: sa.Engine, version: str, *, replace: bool, params: dict[str, Any]) -> Claim:
    """Take the version for this process or fail with a message saying why not."""
    validate_name(version)
    lock = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = lock.execute(
            sa.select(sa.func.pg_try_advisory_lock(_lock_key(lock, version)))
        ).scalar()
        if not got:
            raise VersionConflict(
                f"version {version!r} is being written by another run{_owner(lock, version)}"
            )
        with engine.begin() as conn:
            replacing, run_id = _record_start(conn, version, replace, params)
    except BaseException:
        lock.close()
        raise
    return Claim(version, run_id, replacing, lock)


def _owner(conn: sa.Connection, version: str) -> str:
    runs = schema.version_runs
    row = conn.execute(
        sa.select(runs.c.host, runs.c.pid, runs.c.started_at)
        .where(runs.c.version == version, runs.c.status == "running")
        .order_by(runs.c.run_id.desc())
        .limit(1)
    ).first()
    return (
        f" (pid {row.pid} on {row.host}, started {row.started_at:%Y-%m-%d %H:%M:%S %Z})"
        if row
        else ""
    )


def _record_start(
    conn: sa.Connection, version: str, replace: bool, params: dict[str, Any]
) -> tuple[bool, int]:
    versions = schema.model_versions
    status = conn.execute(
        sa.select(versions.c.status).where(versions.c.name == version).with_for_update()
    ).scalar()
    replacing = status == "published"
    if replacing and not replace:
        raise VersionConflict(
            f"version {version!r} is already published; choose another name or pass --replace"
        )
    if status is None:
        conn.execute(
            sa.insert(versions).values(
                name=version, status="running", started_at=sa.func.now(), params=params
            )
        )
    elif not replacing:  # failed, or running with no live owner: start it afresh
        conn.execute(
            sa.update(versions)
            .where(versions.c.name == version)
            .values(
                status="running",
                started_at=sa.func.now(),
                finished_at=None,
                error=None,
                params=params,
                data_stats={},
                phase_seconds={},
            )
        )
    runs = schema.version_runs
    conn.execute(
        sa.update(runs)
        .where(runs.c.version == version, runs.c.status == "running")
        .values(status="failed", finished_at=sa.func.now(), error="abandoned: its process died")
    )
    run_id = conn.execute(
        sa.insert(runs)
        .values(
            version=version,
            status="running",
            replacing=replacing,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        .returning(runs.c.run_id)
    ).scalar_one()
    return replacing, run_id


def mark_published(conn: sa.Connection, claim: Claim, record: dict[str, Any]) -> None:
    """Flip the version to published; call inside the transaction that attaches its outputs."""
    conn.execute(
        sa.update(schema.model_versions)
        .where(schema.model_versions.c.name == claim.version)
        .values(
            status="published",
            run_id=claim.run_id,
            finished_at=sa.func.now(),
            published_at=sa.func.now(),
            error=None,
            **record,
        )
    )
    _finish_run(conn, claim.run_id, "succeeded", None)


def mark_failed(engine: sa.Engine, claim: Claim, error: str) -> None:
    """Record a failed run; a failed replacement leaves the published version as it was."""
    with engine.begin() as conn:
        _finish_run(conn, claim.run_id, "failed", error)
        if not claim.replacing:
            conn.execute(
                sa.update(schema.model_versions)
                .where(schema.model_versions.c.name == claim.version)
                .values(status="failed", finished_at=sa.func.now(), error=error)
            )


def _finish_run(conn: sa.Connection, run_id: int, status: str, error: str | None) -> None:
    conn.execute(
        sa.update(schema.version_runs)
        .where(schema.version_runs.c.run_id == run_id)
        .values(status=status, finished_at=sa.func.now(), error=error)
    )


def is_live(conn: sa.Connection, version: str) -> bool:
    """True when some session holds the version's lock (a running row without one is stale)."""
    held = sa.text(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:key, 0))"
    )
    return bool(conn.execute(held, {"key": _lock_text(conn, version)}).scalar())
