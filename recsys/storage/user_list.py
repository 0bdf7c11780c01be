"""One user's recommendations, from a named version or the version an alias resolves to.

Read through the analysts' views, so an alias resolves exactly as in SQL (``production`` falls
back to the latest published version while it is not set) and only published versions are seen.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from recsys.errors import RecsysError
from recsys.storage import aliases, views
from recsys.storage.versions import require_published


@dataclass(frozen=True)
class Recommendation:
    rank: int
    movie_id: int
    title: str | None
    genres: list[str] | None
    score: float
    source: str


@dataclass(frozen=True)
class UserRecommendations:
    user_id: int
    version: str
    #: The alias asked for and how it resolved; None when a version was named.
    alias: str | None
    resolved_by: str | None
    items: list[Recommendation]


def for_user(
    conn: sa.Connection, user_id: int, *, version: str | None = None, alias: str | None = None
) -> UserRecommendations:
    """The user's list in rank order; by default from the version ``production`` resolves to."""
    if version is not None and alias is not None:
        raise ValueError("pass a version or an alias, not both")
    resolved_by = None
    if version is None:
        alias = alias or aliases.DEFAULT_ALIAS
        version, resolved_by = _resolve(conn, alias)
    else:
        require_published(conn, version)
    recs = views.published_recommendations
    rows = conn.execute(
        sa.select(
            recs.c.rank, recs.c.movie_id, recs.c.title, recs.c.genres, recs.c.score, recs.c.source
        )
        .where(recs.c.version == version, recs.c.user_id == user_id)
        .order_by(recs.c.rank)
    ).all()
    if not rows:
        raise RecsysError(f"user {user_id} has no recommendations in version {version!r}")
    items = [Recommendation(*row) for row in rows]
    return UserRecommendations(user_id, version, alias, resolved_by, items)


def _resolve(conn: sa.Connection, alias: str) -> tuple[str, str]:
    found = aliases.resolve(conn, alias)
    if found is None or found.alias is None:
        if alias == aliases.DEFAULT_ALIAS:
            raise RecsysError("no version is published yet")
        raise RecsysError(f"alias {alias!r} is not set; see `recsys-job promote`")
    return found.version, found.resolved_by
