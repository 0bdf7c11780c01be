"""What every parser returns: ratings, movies and users in one fixed schema.

The loader writes these frames to PostgreSQL without looking at where they came from, so the
schema is checked when a ``ParsedData`` is built rather than trusted.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

UTC_NS = pd.DatetimeTZDtype("ns", "UTC")

RATINGS_SCHEMA = {
    "user_id": "int64",
    "movie_id": "int64",
    "rating": "float64",
    "rated_at": UTC_NS,
    "line": "int64",
}
MOVIES_SCHEMA = {
    "movie_id": "int64",
    "title": "str",
    "genres": "object",
    "year": "Int64",
    "line": "int64",
}
USERS_SCHEMA = {
    "user_id": "int64",
    "gender": "object",
    "age": "Int64",
    "occupation": "object",
    "zip_code": "object",
    "line": "int64",
}
DERIVED = "derived"


def _check_schema(name: str, frame: pd.DataFrame, schema: dict[str, object]) -> None:
    if list(frame.columns) != list(schema):
        raise ValueError(f"{name} columns are {list(frame.columns)}, expected {list(schema)}")
    for column, dtype in schema.items():
        if frame[column].dtype != dtype:
            raise TypeError(f"{name}.{column} has dtype {frame[column].dtype}, expected {dtype}")


@dataclass(frozen=True)
class ParsedData:
    """Ratings, movies and users of one input, with the source of each frame."""

    layout: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame
    sources: dict[str, str]

    def __post_init__(self) -> None:
        _check_schema("ratings", self.ratings, RATINGS_SCHEMA)
        _check_schema("movies", self.movies, MOVIES_SCHEMA)
        _check_schema("users", self.users, USERS_SCHEMA)


@dataclass(frozen=True)
class StreamedData:
    """An input whose ratings arrive in chunks, so that ``load`` never holds a whole file.

    Each chunk is a frame in the ratings schema, validated row by row; repeats across chunks are
    found by the loader. Movies and users are whole frames, or None where the loader is to make
    placeholders for the ids the ratings name.
    """

    layout: str
    ratings: Iterable[pd.DataFrame]
    movies: pd.DataFrame | None
    users: pd.DataFrame | None
    sources: dict[str, str]


def _object(values: object, n: int) -> pd.Series:
    """An object column holding str or None (None rather than NaN: it becomes SQL NULL).

    Built as an object Series because pandas would turn an array of strings into ``str``.
    """
    if values is None:
        return pd.Series(np.full(n, None, dtype=object), dtype=object)
    array = np.asarray(values, dtype=object)
    return pd.Series(np.where(pd.isna(array), None, array), dtype=object)


def ratings_frame(
    user_id: np.ndarray,
    movie_id: np.ndarray,
    rating: np.ndarray | None,
    rated_at: pd.Series | pd.DatetimeIndex | None,
    line: np.ndarray,
) -> pd.DataFrame:
    """Build the ratings frame; ``rated_at`` is tz-aware; None means NaN ratings or NaT times."""
    n = len(user_id)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_id, dtype=np.int64),
            "movie_id": np.asarray(movie_id, dtype=np.int64),
            "rating": np.full(n, np.nan) if rating is None else np.asarray(rating, np.float64),
            "rated_at": (
                pd.Series(pd.NaT, index=range(n), dtype=UTC_NS)
                if rated_at is None
                else pd.Series(rated_at).reset_index(drop=True).astype(UTC_NS)
            ),
            "line": np.asarray(line, dtype=np.int64),
        }
    )


def movies_frame(
    movie_id: np.ndarray,
    title: object,
    genres: list[list[str]],
    year: object,
    line: np.ndarray,
) -> pd.DataFrame:
    """Build the movies frame; ``year`` may hold missing values."""
    return pd.DataFrame(
        {
            "movie_id": np.asarray(movie_id, dtype=np.int64),
            "title": pd.Series(np.asarray(title, dtype=object), dtype="str"),
            "genres": pd.Series(list(genres), dtype=object),
            "year": pd.array(year, dtype="Int64"),
            "line": np.asarray(line, dtype=np.int64),
        }
    )


def users_frame(
    user_id: np.ndarray,
    line: np.ndarray,
    gender: object = None,
    age: object = None,
    occupation: object = None,
    zip_code: object = None,
) -> pd.DataFrame:
    """Build the users frame; attributes left as None are unknown for every user."""
    n = len(user_id)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_id, dtype=np.int64),
            "gender": _object(gender, n),
            "age": pd.array(np.full(n, pd.NA) if age is None else age, dtype="Int64"),
            "occupation": _object(occupation, n),
            "zip_code": _object(zip_code, n),
            "line": np.asarray(line, dtype=np.int64),
        }
    )


def derived_users(ratings: pd.DataFrame) -> pd.DataFrame:
    """Users known only by their ids in the ratings, every attribute unknown."""
    return placeholder_users(np.unique(ratings["user_id"].to_numpy()))


def placeholder_users(ids: np.ndarray) -> pd.DataFrame:
    """Users with these ids and no attributes, marked derived (``line`` 0)."""
    return users_frame(ids, np.zeros(len(ids), dtype=np.int64))


def derived_movies(ratings: pd.DataFrame) -> pd.DataFrame:
    """Placeholder movies ("Item 123", no genres) for inputs without a movies file."""
    return placeholder_movies(np.unique(ratings["movie_id"].to_numpy()))


def placeholder_movies(ids: np.ndarray) -> pd.DataFrame:
    """Movies with these ids titled "Item <id>", without genres, marked derived (``line`` 0)."""
    return movies_frame(
        ids,
        [f"Item {i}" for i in ids],
        [[] for _ in ids],
        [pd.NA] * len(ids),
        np.zeros(len(ids), dtype=np.int64),
    )
