"""One movie's similar items, from a named version or the version an alias resolves to.

Read through the ``published_similar_items`` view (titles from ``movies``, published versions
only) after resolving the alias as :mod:`recsys.scoring.published_recommendations` does, so the
command shows what ``production_similar_items`` gives in SQL.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from recsys.errors import RecsysError
from recsys.storage import views
from recsys.versions.aliases import resolve


@dataclass(frozen=True)
class SimilarItem:
    rank: int
    movie_id: int
    title: str | None
    genres: list[str] | None
    score: float


@dataclass(frozen=True)
class SimilarItems:
    movie_id: int
    title: str | None
    version: str
    #: The alias asked for and how it resolved; None when a version was named.
    alias: str | None
    resolved_by: str | None
    items: list[SimilarItem]


def for_movie(
    conn: sa.Connection, movie_id: int, *, version: str | None = None, alias: str | None = None
) -> SimilarItems:
    """The movie's similar items in rank order; by default from what ``production`` resolves to."""
    found = resolve(conn, version=version, alias=alias)
    view = views.published_similar_items
    rows = conn.execute(
        sa.select(
            view.c.title,
            view.c.rank,
            view.c.similar_movie_id,
            view.c.similar_title,
            view.c.similar_genres,
            view.c.score,
        )
        .where(view.c.version == found.version, view.c.movie_id == movie_id)
        .order_by(view.c.rank)
    ).all()
    if not rows:
        raise RecsysError(
            f"movie {movie_id} has no similar items in version {found.version!r} (the model "
            "learns only movies with training interactions; versions published before similar "
            "items were written have none)"
        )
    items = [
        SimilarItem(r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score)
        for r in rows
    ]
    return SimilarItems(
        movie_id, rows[0].title, found.version, found.alias, found.resolved_by, items
    )
