"""One user's recommendations, from a named version or the version an alias resolves to.

Read through the analysts' views, so an alias resolves exactly as in SQL (``production`` falls
back to the latest published version while it is not set) and only published versions are seen.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from recsys.errors import RecsysError
from recsys.storage import views
from recsys.versions.aliases import resolve


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
    found = resolve(conn, version=version, alias=alias)
    recs = views.published_recommendations
    rows = conn.execute(
        sa.select(
            recs.c.rank, recs.c.movie_id, recs.c.title, recs.c.genres, recs.c.score, recs.c.source
        )
        .where(recs.c.version == found.version, recs.c.user_id == user_id)
        .order_by(recs.c.rank)
    ).all()
    if not rows:
        raise RecsysError(f"user {user_id} has no recommendations in version {found.version!r}")
    items = [Recommendation(*row) for row in rows]
    return UserRecommendations(user_id, found.version, found.alias, found.resolved_by, items)
