"""Build ParsedData from typed rows: collapse repeats, fill in missing files, check references."""

from collections.abc import Callable

import pandas as pd

from recsys.ingest import validate
from recsys.ingest.records import (
    DERIVED,
    ParsedData,
    derived_movies,
    derived_users,
    ratings_frame,
)
from recsys.ingest.table import Table


def rating_rows(
    table: Table,
    user: str,
    movie: str,
    rating: str | None,
    time: str | None,
    times: Callable[[Table, str], pd.Series] = validate.unix_times,
) -> pd.DataFrame:
    """The ratings frame from a table's columns; ``None`` for a column the file lacks."""
    return ratings_frame(
        validate.ids(table, user, "user id"),
        validate.ids(table, movie, "movie id"),
        None if rating is None else validate.ratings(table, rating),
        None if time is None else times(table, time),
        table.lines,
    )


def assemble(
    layout: str,
    ratings: pd.DataFrame,
    sources: dict[str, str],
    movies: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
) -> ParsedData:
    """Check and combine the frames; ``sources`` names the file of each frame given."""
    ratings = validate.distinct(
        ratings, ["user_id", "movie_id"], "rating of this user for this movie", sources["ratings"]
    )
    if movies is None:
        movies = derived_movies(ratings)
    else:
        movies = validate.distinct(movies, ["movie_id"], "movie id", sources["movies"])
        validate.known(
            ratings,
            "movie_id",
            movies["movie_id"].to_numpy(),
            "movie",
            sources["ratings"],
            sources["movies"],
        )
    if users is None:
        users = derived_users(ratings)
    else:
        users = validate.distinct(users, ["user_id"], "user id", sources["users"])
        validate.known(
            ratings,
            "user_id",
            users["user_id"].to_numpy(),
            "user",
            sources["ratings"],
            sources["users"],
        )
    sources = {
        "ratings": sources["ratings"],
        "movies": sources.get("movies", DERIVED),
        "users": sources.get("users", DERIVED),
    }
    return ParsedData(layout, ratings, movies, users, sources)
