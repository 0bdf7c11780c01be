"""The version registry: who may write a version, and how its status moves.

A run *claims* a version name before doing any work: it takes a session-level advisory lock keyed
on the name (held on a connection of its own for the whole run) and records itself in
``version_runs``. A second run of the same name fails the lock at once; a run that died releases it
with its connection, which is how a ``running`` row with no live owner is recognised as stale.

Status of ``model_versions``: a new name goes running → published | failed. Re-running a failed or
stale name needs no ``--replace``; replacing a published one keeps it published (and readable)
until the new run's outputs are swapped in, and a failed replacement leaves it untouched.

A run whose lock session is terminated or disconnected mid-run has lost the version to whoever
claims it next, so it must not publish: :func:`confirm_held` checks that the lock is still held by
this run's session, as the publishing transaction starts and again just before it commits.
"""

import os
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from recsys.errors import ConnectionLost, VersionConflict
from recsys.storage import names, schema
from recsys.versions.status import RunStatus, VersionStatus


def validate_name(name: str) -> str:
    """Reject version names the registry's CHECK constraint would, before anything is written."""
    return names.validate(name, "version")


@dataclass
class Claim:
    """A version held by this process; release() when the run ends, however it ends.

    ``lock_pid`` is the backend holding the lock; ``run_id`` is set by :func:`start`, the first
    write of a run.
    """

    version: str
    replacing: bool
    lock: sa.Connection
    lock_pid: int
    run_id: int | None = None

    def release(self) -> None:
        """Unlock; a session that died (terminated, disconnected) took the lock with it."""
        try:
            self.lock.execute(
                sa.select(sa.func.pg_advisory_unlock(names.lock_key(self.lock, self.version)))
            )
        except sa.exc.OperationalError:
            pass
        finally:
            self.lock.close()


def acquire(engine: sa.Engine, version: str, *, replace: bool) -> Claim:
    """Take the version's lock for this process, or fail saying why not. Writes nothing."""
    validate_name(version)
    lock = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        key = names.lock_key(lock, version)
        if not lock.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
            raise VersionConflict(
                f"version {version!r} is being written by another run{_owner(lock, version)}"
            )
        versions = schema.model_versions
        status = lock.execute(
            sa.select(versions.c.status).where(versions.c.name == version)
        ).scalar()
        if status == VersionStatus.PUBLISHED and not replace:
            raise VersionConflict(
                f"version {version!r} is already published; choose another name or pass --replace"
            )
        pid = lock.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
    except BaseException:
        lock.close()  # closing the session releases its advisory lock
        raise
    return Claim(version, status == VersionStatus.PUBLISHED, lock, pid)


def _owner(conn: sa.Connection, version: str) -> str:
    runs = schema.version_runs
    row = conn.execute(
        sa.select(runs.c.host, runs.c.pid, runs.c.started_at)
        .where(runs.c.version == version, runs.c.status == RunStatus.RUNNING)
        .order_by(runs.c.run_id.desc())
        .limit(1)
    ).first()
    if row is None:
        return ""
    return f" (pid {row.pid} on {row.host}, started {row.started_at:%Y-%m-%d %H:%M:%S %Z})"


def start(engine: sa.Engine, claim: Claim, params: dict[str, Any]) -> int:
    """Record the run: the version row becomes running (unless it is being replaced)."""
    versions, runs = schema.model_versions, schema.version_runs
    with engine.begin() as conn:
        status = conn.execute(
            sa.select(versions.c.status).where(versions.c.name == claim.version).with_for_update()
        ).scalar()
        if status == VersionStatus.PUBLISHED and not claim.replacing:
            # Published since acquire() looked: by a run whose lock died just before its commit.
            raise VersionConflict(f"version {claim.version!r} was published meanwhile")
        fresh = {
            "status": VersionStatus.RUNNING,
            "started_at": sa.func.now(),
            "finished_at": None,
            "error": None,
            "params": params,
            "data_stats": {},
            "phase_seconds": {},
        }
        if status is None:
            conn.execute(sa.insert(versions).values(name=claim.version, **fresh))
        elif not claim.replacing:  # failed, or running with no live owner: start afresh
            conn.execute(sa.update(versions).where(versions.c.name == claim.version).values(fresh))
        conn.execute(
            sa.update(runs)
            .where(runs.c.version == claim.version, runs.c.status == RunStatus.RUNNING)
            .values(
                status=RunStatus.FAILED,
                finished_at=sa.func.now(),
                error="abandoned: its process died",
            )
        )
        claim.run_id = conn.execute(
            sa.insert(runs)
            .values(
                version=claim.version,
                status=RunStatus.RUNNING,
                replacing=claim.replacing,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
            .returning(runs.c.run_id)
        ).scalar_one()
    return claim.run_id


def mark_published(conn: sa.Connection, claim: Claim, record: dict[str, Any]) -> None:
    """Flip the version to published; call inside the transaction that attaches its outputs.

    Refuses unless this run's session still holds the version's lock: checked (again) after the
    row update, whose row lock makes another run's :func:`start` wait for this transaction's end.
    """
    conn.execute(
        sa.update(schema.model_versions)
        .where(schema.model_versions.c.name == claim.version)
        .values(
            status=VersionStatus.PUBLISHED,
            run_id=claim.run_id,
            # A replacement keeps the row (and created_at) but times its own run.
            started_at=sa.select(schema.version_runs.c.started_at)
            .where(schema.version_runs.c.run_id == claim.run_id)
            .scalar_subquery(),
            finished_at=sa.func.now(),
            published_at=sa.func.now(),
            error=None,
            **record,
        )
    )
    _finish_run(conn, claim.run_id, RunStatus.SUCCEEDED, None)
    confirm_held(conn, claim)


def confirm_held(conn: sa.Connection, claim: Claim) -> None:
    """Raise :class:`ConnectionLost` unless this run's lock session still holds the version."""
    if claim.lock_pid not in _holders(conn, claim.version):
        raise ConnectionLost(
            f"the database session holding version {claim.version!r} ended mid-run (terminated "
            "or disconnected), so another run may have taken the version; nothing was published"
        )


def record_phase(engine: sa.Engine, version: str, phase: str, seconds: float) -> None:
    """Add a phase that ends with the publish commit (so could not be recorded inside it)."""
    versions = schema.model_versions
    with engine.begin() as conn:
        conn.execute(
            sa.update(versions)
            .where(versions.c.name == version)
            .values(
                phase_seconds=versions.c.phase_seconds.op("||")(
                    sa.func.jsonb_build_object(phase, seconds)
                )
            )
        )


def mark_failed(engine: sa.Engine, claim: Claim, error: str) -> None:
    """Record a failed run; a failed replacement leaves the published version as it was.

    Only rows still ``running`` change: a failure after the publishing transaction committed
    cannot take back what readers already see, so it must not mark that version failed; and a
    run whose lock died may have been superseded (:func:`start` marks it abandoned), so the version
    row is only touched while this run's attempt is still the running one. Best effort: when the
    database cannot be reached the row stays ``running`` with no live owner, which reads as stale.
    """
    versions, runs = schema.model_versions, schema.version_runs
    try:
        with engine.begin() as conn:
            # Row-lock the version first, in the order start() takes its locks (no deadlock).
            conn.execute(
                sa.select(versions.c.name).where(versions.c.name == claim.version).with_for_update()
            )
            ours = conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == claim.run_id, runs.c.status == RunStatus.RUNNING)
                .values(status=RunStatus.FAILED, finished_at=sa.func.now(), error=error)
                .returning(runs.c.run_id)
            ).first()
            if ours is not None and not claim.replacing:
                conn.execute(
                    sa.update(versions)
                    .where(
                        versions.c.name == claim.version,
                        versions.c.status == VersionStatus.RUNNING,
                    )
                    .values(status=VersionStatus.FAILED, finished_at=sa.func.now(), error=error)
                )
    except sa.exc.OperationalError:
        pass


def _finish_run(conn: sa.Connection, run_id: int, status: RunStatus, error: str | None) -> None:
    conn.execute(
        sa.update(schema.version_runs)
        .where(schema.version_runs.c.run_id == run_id)
        .values(status=status, finished_at=sa.func.now(), error=error)
    )


def is_live(conn: sa.Connection, version: str) -> bool:
    """True when some session holds the version's lock (a running row without one is stale)."""
    return bool(_holders(conn, version))


def _holders(conn: sa.Connection, version: str) -> list[int]:
    """Backend pids holding the version's lock (at most one: it is exclusive)."""
    held = sa.text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:key, 0)"
    )
    return list(conn.execute(held, {"key": names.lock_text(conn, version)}).scalars())
