"""Synthetic data: deterministic, in the ParsedData schema, and shaped like real ratings.

How fast it is generated is printed by ``python bench/data_speed.py``, not asserted here.
"""

import numpy as np
import pandas as pd
import pytest

from recsys.ingest.parse.records import MOVIES_SCHEMA, RATINGS_SCHEMA, USERS_SCHEMA, ParsedData
from recsys.synthetic.movielens_like import GENRES, generate


@pytest.fixture(scope="module")
def data() -> ParsedData:
    return generate(seed=3)


def test_schema_and_sizes(data: ParsedData) -> None:
    assert data.layout == "synthetic"
    for frame, schema in (
        (data.ratings, RATINGS_SCHEMA),
        (data.movies, MOVIES_SCHEMA),
        (data.users, USERS_SCHEMA),
    ):
        assert dict(frame.dtypes) == schema
    assert data.movies["movie_id"].tolist() == list(range(1, 1001))
    assert data.users["user_id"].tolist() == list(range(1, 601))
    assert set(data.sources) == {"ratings", "movies", "users"}


def test_same_seed_same_data_other_seed_other_data(data: ParsedData) -> None:
    again = generate(seed=3)
    for name in ("ratings", "movies", "users"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(again, name))
    other = generate(seed=4)
    assert not data.ratings.equals(other.ratings)
    assert not data.movies["title"].equals(other.movies["title"])


def test_keys_unique_and_references_hold(data: ParsedData) -> None:
    ratings = data.ratings
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
    assert ratings["movie_id"].isin(data.movies["movie_id"]).all()
    assert ratings["user_id"].isin(data.users["user_id"]).all()
    assert set(ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_every_user_rates_five_or_more_with_a_heavy_tail(data: ParsedData) -> None:
    counts = data.ratings.groupby("user_id").size()
    assert len(counts) == 600
    assert counts.min() >= 5
    assert counts.max() > 4 * counts.median()
    assert 45 < counts.mean() < 75  # about the requested 60


def test_item_popularity_is_skewed(data: ParsedData) -> None:
    counts = data.ratings["movie_id"].value_counts()
    top_share = counts.iloc[: len(data.movies) // 10].sum() / len(data.ratings)
    assert top_share > 0.3  # 0.1 if popularity were flat


def test_ratings_follow_genre_taste(data: ParsedData) -> None:
    """Users rate movies of their favourite genre higher: there is signal to learn."""
    rated = data.ratings.merge(data.movies[["movie_id", "genres"]], on="movie_id")
    per_genre = rated.explode("genres").groupby(["user_id", "genres"]).size()
    favourite = per_genre.groupby(level="user_id").idxmax().map(lambda pair: pair[1])
    favourites = rated["user_id"].map(favourite)
    hit = np.array([fav in genres for fav, genres in zip(favourites, rated["genres"], strict=True)])
    assert rated["rating"][hit].mean() > rated["rating"][~hit].mean() + 0.2


def test_movies_times_and_users_look_real(data: ParsedData) -> None:
    movies = data.movies
    assert movies["genres"].map(len).between(1, 3).all()
    assert set().union(*movies["genres"]) <= set(GENRES)
    years = movies["title"].str.extract(r"\((\d{4})\)$", expand=False).astype(int)
    assert (years == movies["year"]).all()
    span = data.ratings["rated_at"].max() - data.ratings["rated_at"].min()
    assert pd.Timedelta(days=365) < span <= pd.Timedelta(days=731)
    assert data.users["gender"].isin(["M", "F"]).all()
    assert data.users["zip_code"].str.fullmatch(r"\d{5}").all()


def test_tiny_sizes_and_bad_arguments() -> None:
    tiny = generate(n_users=2, n_items=5, mean_ratings_per_user=5, seed=1)
    assert tiny.ratings.groupby("user_id").size().tolist() == [5, 5]
    with pytest.raises(ValueError, match="mean_ratings_per_user"):
        generate(mean_ratings_per_user=4)
