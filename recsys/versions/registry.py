"""The version registry: who may write a version, how its status moves, and what it records.

This is the one module that reads or writes a version's registry row (``model_versions``): the
lifecycle below, and the reads and small writes other modules need (:func:`require_published`,
:func:`add_stats`, :func:`published_run`, :func:`delete`, the rows ``versions`` lists), so the
rules of the row (what "published" means, how its JSON records grow) live in one place.

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
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from recsys.errors import ConnectionLost, RecsysError, VersionConflict
from recsys.storage import names, schema
from recsys.versions.status import RunStatus, VersionStatus

_VERSIONS = schema.model_versions
#: The columns of a version's summary (``versions``); a row in full adds :data:`_DETAILS`.
_SUMMARY = [
    _VERSIONS.c[name]
    for name in ("name", "status", "created_at", "started_at", "finished_at", "published_at")
]
_DETAILS = [_VERSIONS.c[name] for name in ("params", "data_stats", "phase_seconds", "code_version")]
#: How a read holds the version's row until the transaction ends: FOR SHARE (``prune`` cannot
#: delete it meanwhile) or FOR UPDATE (nobody else changes it meanwhile).
RowLock = Literal["share", "update"]


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
        status = stored_status(lock, version)
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
    versions, runs = _VERSIONS, schema.version_runs
    with engine.begin() as conn:
        status = stored_status(conn, claim.version, lock="update")
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
        sa.update(_VERSIONS)
        .where(_VERSIONS.c.name == claim.version)
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
    with engine.begin() as conn:
        _merge(conn, version, _VERSIONS.c.phase_seconds, {phase: seconds})


def add_stats(conn: sa.Connection, version: str, stats: dict[str, Any]) -> None:
    """Add ``stats``' keys to the version's ``data_stats`` (replacing those it has), in the
    caller's transaction."""
    _merge(conn, version, _VERSIONS.c.data_stats, stats)


def _merge(conn: sa.Connection, version: str, column: sa.Column, values: dict[str, Any]) -> None:
    """``column`` (a JSONB object) ``||`` ``values``: the keys added, the others kept."""
    conn.execute(
        sa.update(_VERSIONS)
        .where(_VERSIONS.c.name == version)
        .values({column: column.op("||")(sa.literal(values, pg.JSONB))})
    )


def mark_failed(engine: sa.Engine, claim: Claim, error: str) -> None:
    """Record a failed run; a failed replacement leaves the published version as it was.

    Only rows still ``running`` change: a failure after the publishing transaction committed
    cannot take back what readers already see, so it must not mark that version failed; and a
    run whose lock died may have been superseded (:func:`start` marks it abandoned), so the version
    row is only touched while this run's attempt is still the running one. Best effort: when the
    database cannot be reached the row stays ``running`` with no live owner, which reads as stale.
    """
    versions, runs = _VERSIONS, schema.version_runs
    try:
        with engine.begin() as conn:
            # Row-lock the version first, in the order start() takes its locks (no deadlock).
            stored_status(conn, claim.version, lock="update")
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


def stored_status(conn: sa.Connection, version: str, *, lock: RowLock | None = None) -> str | None:
    """The status the version's row holds (None: no such version); ``lock`` holds the row."""
    query = sa.select(_VERSIONS.c.status).where(_VERSIONS.c.name == version)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    return conn.execute(query).scalar()


def shown_status(conn: sa.Connection, version: str, status: str) -> str:
    """The status as readers are told it: ``stale`` for a running version no live run holds."""
    if status == VersionStatus.RUNNING and not is_live(conn, version):
        return VersionStatus.STALE
    return status


def exists(conn: sa.Connection, version: str) -> bool:
    """Whether the registry has a row of that name, whatever its status."""
    return stored_status(conn, version) is not None


def require_published(conn: sa.Connection, name: str, *, lock: bool = False) -> None:
    """Refuse a version readers cannot see; ``lock`` holds its row (FOR SHARE) till commit."""
    status = stored_status(conn, name, lock="share" if lock else None)
    if status is None:
        raise unknown(conn, name)
    if status != VersionStatus.PUBLISHED:
        raise RecsysError(f"version {name!r} is {shown_status(conn, name, status)}, not published")


def published_stats(conn: sa.Connection, name: str) -> dict[str, Any]:
    """The ``data_stats`` of a published version, its row held FOR SHARE until the transaction
    ends (so it cannot be pruned meanwhile); RecsysError as :func:`require_published`."""
    require_published(conn, name, lock=True)
    query = sa.select(_VERSIONS.c.data_stats).where(_VERSIONS.c.name == name)
    return conn.execute(query).scalar_one()


def unknown(conn: sa.Connection, name: str) -> RecsysError:
    """The error for a version that does not exist, naming those that do."""
    names = conn.execute(sa.select(_VERSIONS.c.name).order_by(_VERSIONS.c.name)).scalars()
    listed = ", ".join(names)
    return RecsysError(
        f"no version {name!r}" + (f" (known: {listed})" if listed else " (the registry is empty)")
    )


def summaries(conn: sa.Connection) -> list[sa.Row]:
    """Every version's summary row (name, status, times), oldest first."""
    query = sa.select(*_SUMMARY).order_by(_VERSIONS.c.created_at, _VERSIONS.c.name)
    return list(conn.execute(query).all())


def details(conn: sa.Connection, name: str) -> sa.Row | None:
    """One version's row in full: the summary, its settings, statistics, phases, code version
    and error; None when there is no such version."""
    query = sa.select(*_SUMMARY, *_DETAILS, _VERSIONS.c.error).where(_VERSIONS.c.name == name)
    return conn.execute(query).first()


def params(conn: sa.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
    """The settings (``params``) of each of ``names`` that exists."""
    query = sa.select(_VERSIONS.c.name, _VERSIONS.c.params).where(_VERSIONS.c.name.in_(names))
    return dict(conn.execute(query).all())


def previous_published(conn: sa.Connection, name: str) -> str | None:
    """The version published last before ``name`` was, if any."""
    versions = _VERSIONS
    published_at = (
        sa.select(versions.c.published_at).where(versions.c.name == name).scalar_subquery()
    )
    return conn.execute(
        sa.select(versions.c.name)
        .where(versions.c.status == VersionStatus.PUBLISHED, versions.c.published_at < published_at)
        .order_by(versions.c.published_at.desc())
        .limit(1)
    ).scalar()


def published_run(conn: sa.Connection, version: str) -> int | None:
    """The run whose partitions ``version`` publishes now; its registry row is held FOR UPDATE."""
    query = sa.select(_VERSIONS.c.run_id).where(_VERSIONS.c.name == version)
    return conn.execute(query.with_for_update()).scalar()


def removal_state(conn: sa.Connection, version: str) -> sa.Row | None:
    """The version's status and ``published_at``, its row held FOR UPDATE (``prune`` re-checks
    them before :func:`delete`); None when it is gone."""
    query = sa.select(_VERSIONS.c.status, _VERSIONS.c.published_at).where(
        _VERSIONS.c.name == version
    )
    return conn.execute(query.with_for_update()).first()


def delete(conn: sa.Connection, version: str) -> None:
    """Delete the version's registry row (its outputs must be dropped first)."""
    conn.execute(sa.delete(_VERSIONS).where(_VERSIONS.c.name == version))
