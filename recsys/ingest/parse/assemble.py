"""Build ParsedData from typed rows: collapse repeats, fill in missing files, check references."""

from collections.abc import Callable, Iterable, Iterator

import pandas as pd

from recsys.ingest.parse import validate
from recsys.ingest.parse.csv_tokenizer import Table
from recsys.ingest.parse.records import (
    DERIVED,
    ParsedData,
    StreamedData,
    derived_movies,
    derived_users,
    ratings_frame,
)


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
        ratings, ["user_id", "movie_id"], validate.RATING_KEY, sources["ratings"]
    )
    movies, users = _distinct(movies, users, sources)
    _check_known(ratings, movies, users, sources)
    return ParsedData(
        layout,
        ratings,
        derived_movies(ratings) if movies is None else movies,
        derived_users(ratings) if users is None else users,
        _named(sources),
    )


def streamed(
    layout: str,
    ratings: Iterable[pd.DataFrame],
    sources: dict[str, str],
    movies: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
) -> StreamedData:
    """:func:`assemble` for ratings that arrive in chunks: each chunk's ids are checked against
    the movies and users given as it passes; repeats and placeholders are the loader's."""
    movies, users = _distinct(movies, users, sources)

    def checked() -> Iterator[pd.DataFrame]:
        for chunk in ratings:
            _check_known(chunk, movies, users, sources)
            yield chunk

    return StreamedData(layout, checked(), movies, users, _named(sources))


def _distinct(
    movies: pd.DataFrame | None, users: pd.DataFrame | None, sources: dict[str, str]
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The movies and users given, exact repeats collapsed; a repeat that differs is an error."""
    if movies is not None:
        movies = validate.distinct(movies, ["movie_id"], "movie id", sources["movies"])
    if users is not None:
        users = validate.distinct(users, ["user_id"], "user id", sources["users"])
    return movies, users


def _check_known(
    ratings: pd.DataFrame,
    movies: pd.DataFrame | None,
    users: pd.DataFrame | None,
    sources: dict[str, str],
) -> None:
    """Every rating's movie and user must be in the movies and users files, where given."""
    for frame, column, what, kind in (
        (movies, "movie_id", "movie", "movies"),
        (users, "user_id", "user", "users"),
    ):
        if frame is not None:
            validate.known(
                ratings, column, frame[column].to_numpy(), what, sources["ratings"], sources[kind]
            )


def _named(sources: dict[str, str]) -> dict[str, str]:
    """Sources of all three tables; those not given were derived from the ratings."""
    return {
        "ratings": sources["ratings"],
        "movies": sources.get("movies", DERIVED),
        "users": sources.get("users", DERIVED),
    }
