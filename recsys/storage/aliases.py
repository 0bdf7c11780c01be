"""Aliases (``production``, ``staging``, ...) name the version readers should use.

Moving an alias is one transaction: the current row of ``version_aliases`` gets its ``valid_to``
and a new row starts at the same instant, so the history has no gaps or overlaps and readers of
the views see the old version or the new one, never neither. A transaction-level advisory lock on
the alias orders concurrent moves, and the target's registry row is held FOR SHARE so ``prune``
cannot remove it between the check and the commit.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from recsys.storage import names, schema
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
    aliases = schema.version_aliases
    current = (aliases.c.alias == alias) & aliases.c.valid_to.is_(None)
    with engine.begin() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(names.lock_key(conn, alias, "alias"))))
        require_published(conn, version, lock=True)
        held = conn.execute(sa.select(aliases.c.version, aliases.c.valid_from).where(current))
        previous, since = held.first() or (None, None)
        if previous == version:
            return Promotion(alias, version, previous, since, changed=False)
        at = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        conn.execute(sa.update(aliases).where(current).values(valid_to=at))
        conn.execute(sa.insert(aliases).values(alias=alias, valid_from=at, version=version))
    return Promotion(alias, version, previous, at, changed=True)
