"""Aliases (``production``, ``staging``, ...) name the version readers should use.

Moving an alias is one transaction: the current row of ``version_aliases`` gets its ``valid_to``
and a new row starts at the same instant, so the history has no gaps or overlaps and readers of
the views see the old version or the new one, never neither. A transaction-level advisory lock on
the alias orders concurrent moves, and the target's registry row is held FOR SHARE so ``prune``
cannot remove it between the check and the commit. :func:`move` does the same inside a caller's
transaction: a run's promotion gate moves the alias in the transaction that publishes the version.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from recsys.storage import names, schema, views
from recsys.storage.versions import require_published

DEFAULT_ALIAS = "production"


@dataclass(frozen=True)
class Promotion:
    """An alias move; ``at`` is when the alias started pointing at ``version``."""

    alias: str
    version: str
    previous: str | None
    at: datetime
    changed: bool


def promote(engine: sa.Engine, version: str, alias: str = DEFAULT_ALIAS) -> Promotion:
    """Point ``alias`` at the published ``version``, recording the move in the history."""
    names.validate(alias, "alias")
    with engine.begin() as conn:
        return move(conn, version, alias)


def move(conn: sa.Connection, version: str, alias: str, note: str | None = None) -> Promotion:
    """:func:`promote` within the caller's transaction; ``note`` says why, in the history."""
    aliases = schema.version_aliases
    current = (aliases.c.alias == alias) & aliases.c.valid_to.is_(None)
    lock(conn, alias)
    require_published(conn, version, lock=True)
    held = conn.execute(sa.select(aliases.c.version, aliases.c.valid_from).where(current))
    previous, since = held.first() or (None, None)
    if previous == version:
        return Promotion(alias, version, previous, since, changed=False)
    at = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
    conn.execute(sa.update(aliases).where(current).values(valid_to=at))
    conn.execute(sa.insert(aliases).values(alias=alias, valid_from=at, version=version, note=note))
    return Promotion(alias, version, previous, at, changed=True)


def lock(conn: sa.Connection, alias: str) -> None:
    """Order moves of ``alias`` until the transaction ends (a transaction-level advisory lock)."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(names.lock_key(conn, alias, "alias"))))


def holder(conn: sa.Connection, alias: str) -> str | None:
    """The version ``alias`` was explicitly set to (its current history row), if any."""
    aliases = schema.version_aliases
    return conn.execute(
        sa.select(aliases.c.version).where(aliases.c.alias == alias, aliases.c.valid_to.is_(None))
    ).scalar()


@dataclass(frozen=True)
class Resolved:
    """A name given for an earlier version: the version, and the alias it came through (None
    when it was a version's own name) with how that alias resolved (``current_aliases``)."""

    version: str
    alias: str | None
    resolved_by: str | None


def resolve(conn: sa.Connection, name: str) -> Resolved | None:
    """The published version an alias resolves to as readers see it (``production`` falls back
    to the latest published), else the version so named (published or not); None if neither."""
    view = views.current_aliases
    row = conn.execute(
        sa.select(view.c.version, view.c.resolved_by).where(view.c.alias == name)
    ).first()
    if row is not None:
        return Resolved(row.version, name, row.resolved_by)
    versions = schema.model_versions
    found = conn.execute(sa.select(versions.c.name).where(versions.c.name == name)).scalar()
    return Resolved(found, None, None) if found is not None else None
