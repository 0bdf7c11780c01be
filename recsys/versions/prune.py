"""Remove old and failed versions, and output tables no live run owns.

Kept: the ``keep`` most recently published versions, every version an alias points to, and any
version a live run is writing. Removed: older published versions, failed ones, and ``running`` ones
whose run died (stale). Removing a version drops its partitions (:func:`recsys.versions.publish.
drop_version_outputs`: a DROP TABLE per output, no DELETE of its rows) and deletes its registry row,
in one transaction, while holding the version's run lock (:func:`recsys.versions.registry.acquire`)
so no run can start it meanwhile. Alias history is kept; it names pruned versions as such.
"""

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from psycopg import sql

from recsys.errors import VersionConflict
from recsys.storage import schema
from recsys.storage.bulk import driver_connection, schema_of
from recsys.versions import registry
from recsys.versions.listing import list_versions
from recsys.versions.publish import drop_version_outputs, unattached_tables
from recsys.versions.status import RunStatus, VersionStatus

_RUN_TABLE = re.compile(r"^({})_r([0-9]+)$".format("|".join(t.name for t in schema.OUTPUT_TABLES)))


@dataclass(frozen=True)
class Decision:
    version: str
    status: str
    published_at: datetime | None
    reason: str


@dataclass(frozen=True)
class Plan:
    remove: list[Decision]
    keep: list[Decision]
    #: Output tables of runs that are neither attached nor live.
    stray_tables: list[str]


@dataclass(frozen=True)
class Outcome:
    removed: list[Decision]
    #: Versions planned for removal that changed meanwhile: (version, why not removed).
    skipped: list[Decision]
    dropped_tables: list[str]


def plan(conn: sa.Connection, keep: int, *, spare: Collection[str] = ()) -> Plan:
    """What :func:`execute` would remove and keep; changes nothing.

    Versions in ``spare`` are kept whatever their age: ``run --keep`` spares the version it has
    just published, since ``published_at`` is when a publish began, and a run that began
    publishing later but committed first counts as newer."""
    if keep < 1:
        raise ValueError("keep at least one published version")
    aliased = _aliased(conn)
    versions = list_versions(conn)
    published = sorted(
        (v for v in versions if v.status == VersionStatus.PUBLISHED),
        key=lambda v: v.published_at,
        reverse=True,
    )
    remove, kept = [], []
    for position, version in enumerate(published):
        decision = partial(Decision, version.name, version.status, version.published_at)
        if position < keep:
            kept.append(decision(f"among the newest {keep} published"))
        elif version.name in aliased:
            kept.append(decision(f"alias {aliased[version.name]}"))
        elif version.name in spare:
            kept.append(decision("just published by this run"))
        else:
            remove.append(decision(f"older than the newest {keep} published"))
    for version in versions:
        if version.status == VersionStatus.RUNNING:
            kept.append(Decision(version.name, version.status, None, "a live run is writing it"))
        elif version.status in (VersionStatus.FAILED, VersionStatus.STALE):
            reason = "failed" if version.status == VersionStatus.FAILED else "its run died (stale)"
            remove.append(Decision(version.name, version.status, None, reason))
    return Plan(remove, kept, _stray_tables(conn))


def execute(engine: sa.Engine, planned: Plan) -> Outcome:
    """Carry out a plan, re-checking each version under its lock first."""
    removed, skipped = [], []
    for decision in planned.remove:
        why_not = _remove(engine, decision)
        if why_not:
            skipped.append(replace(decision, reason=why_not))
        else:
            removed.append(decision)
    with engine.begin() as conn:
        stray = set(_stray_tables(conn))
        dropped = [name for name in planned.stray_tables if name in stray]
        cursor = driver_connection(conn).cursor()
        for name in dropped:
            cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema_of(conn), name)))
    return Outcome(removed, skipped, dropped)


def _remove(engine: sa.Engine, decision: Decision) -> str | None:
    """Drop one version's outputs and registry row; returns why not when it has changed."""
    try:
        claim = registry.acquire(engine, decision.version, replace=True)
    except VersionConflict:
        return "a run started writing it"
    try:
        with engine.begin() as conn:
            row = registry.removal_state(conn, decision.version)
            if row is None:
                return "it is gone already"
            stale = decision.status == VersionStatus.STALE
            expected = VersionStatus.RUNNING if stale else decision.status
            if (row.status, row.published_at) != (expected, decision.published_at):
                return f"it changed meanwhile (now {row.status})"
            alias = _aliased(conn).get(decision.version)
            if alias:
                return f"alias {alias} points to it now"
            drop_version_outputs(conn, decision.version)
            registry.delete(conn, decision.version)
    finally:
        claim.release()
    return None


def _aliased(conn: sa.Connection) -> dict[str, str]:
    """Version → the aliases currently pointing to it (comma-separated)."""
    aliases = schema.version_aliases
    rows = conn.execute(
        sa.select(aliases.c.version, sa.func.string_agg(aliases.c.alias, ", "))
        .where(aliases.c.valid_to.is_(None))
        .group_by(aliases.c.version)
    ).all()
    return dict(rows)


def _stray_tables(conn: sa.Connection) -> list[str]:
    """``<output>_r<run_id>`` tables that are not attached and whose run is not live."""
    runs = schema.version_runs
    stray = []
    for name in sorted(unattached_tables(conn)):
        match = _RUN_TABLE.match(name)
        if not match:
            continue
        run = conn.execute(
            sa.select(runs.c.version, runs.c.status).where(runs.c.run_id == int(match[2]))
        ).first()
        if (
            run is None
            or run.status != RunStatus.RUNNING
            or not registry.is_live(conn, run.version)
        ):
            stray.append(name)
    return stray
