"""Aliases (``production``, ``staging``, ...) name the version readers should use.

Moving an alias is one transaction: the current row of ``version_aliases`` gets its ``valid_to``
and a new row starts at the same instant, so the history has no gaps or overlaps and readers of
the views see the old version or the new one, never neither. A transaction-level advisory lock on
the alias orders concurrent moves, and the target's registry row is held FOR SHARE so ``prune``
cannot remove it between the check and the commit. :func:`move` does the same inside a caller's
transaction: a run's promotion gate moves the alias in the transaction that publishes the version.
Moving ``production`` also re-creates the :data:`PRODUCTION_VIEWS` (:func:`pin_production`) in
the same transaction.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from recsys.errors import RecsysError
from recsys.storage import names, schema, sqlfiles, views
from recsys.versions import registry

DEFAULT_ALIAS = "production"
#: The views of what is served now: they name the version ``production`` points to as a constant.
PRODUCTION_VIEWS = ("production_recommendations", "production_similar_items")


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
    registry.require_published(conn, version, lock=True)
    held = conn.execute(sa.select(aliases.c.version, aliases.c.valid_from).where(current))
    previous, since = held.first() or (None, None)
    if previous == version:
        return Promotion(alias, version, previous, since, changed=False)
    at = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
    conn.execute(sa.update(aliases).where(current).values(valid_to=at))
    conn.execute(sa.insert(aliases).values(alias=alias, valid_from=at, version=version, note=note))
    if alias == DEFAULT_ALIAS:
        pin_production(conn)
    return Promotion(alias, version, previous, at, changed=True)


def pin_production(conn: sa.Connection) -> None:
    """Re-create the :data:`PRODUCTION_VIEWS` naming the version ``production`` points to (NULL
    while it is not set), in this transaction.

    With the version as a constant PostgreSQL plans its partition alone, where a version found
    in the registry while the query runs makes it plan every version's partition (at 400 versions
    that planning took longer than the query; bench/many_versions.py). :func:`promote` calls this
    when ``production`` moves; after editing ``version_aliases`` by hand, call it too, or the
    views show nothing (never another version: they also check ``current_aliases``). Replacing a
    view waits for transactions that read it to end.
    """
    aliases = schema.version_aliases
    version = conn.execute(
        sa.select(aliases.c.version).where(
            aliases.c.alias == DEFAULT_ALIAS, aliases.c.valid_to.is_(None)
        )
    ).scalar()
    sqlfiles.create_views(conn, PRODUCTION_VIEWS, {"pinned_version": version})


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
    """A version and how it was found: ``alias`` is the alias it came through (None when a
    version was named) and ``resolved_by`` how that alias resolved (see ``current_aliases``)."""

    version: str
    alias: str | None
    resolved_by: str | None


def lookup(conn: sa.Connection, name: str) -> Resolved | None:
    """The published version an alias resolves to as readers see it (``production`` falls back
    to the latest published), else the version so named (published or not); None if neither."""
    view = views.current_aliases
    row = conn.execute(
        sa.select(view.c.version, view.c.resolved_by).where(view.c.alias == name)
    ).first()
    if row is not None:
        return Resolved(row.version, name, row.resolved_by)
    return Resolved(name, None, None) if registry.exists(conn, name) else None


def resolve(
    conn: sa.Connection, *, version: str | None = None, alias: str | None = None
) -> Resolved:
    """A named published version, or the version ``alias`` (default ``production``) resolves to,
    read from the ``current_aliases`` view so it resolves exactly as in SQL (``production`` falls
    back to the latest published version while it is not set)."""
    if version is not None and alias is not None:
        raise ValueError("pass a version or an alias, not both")
    if version is not None:
        registry.require_published(conn, version)
        return Resolved(version, None, None)
    alias = alias or DEFAULT_ALIAS
    view = views.current_aliases
    row = conn.execute(
        sa.select(view.c.version, view.c.resolved_by).where(view.c.alias == alias)
    ).first()
    if row is None:
        if alias == DEFAULT_ALIAS:
            raise RecsysError("no version is published yet")
        raise RecsysError(f"alias {alias!r} is not set; see `recsys-job promote`")
    return Resolved(row.version, alias, row.resolved_by)
