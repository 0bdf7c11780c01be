"""Synthetic ratings with real structure, for tests and demos without a MovieLens download.

Users have tastes over 18 genres plus a few hidden factors; items have 1-3 genres and a
Zipf-like popularity. Who rates what follows popularity times affinity, and the stars follow
affinity too, so a recommender trained on it can beat a popularity baseline.
"""

import numpy as np
import pandas as pd

from recsys.ingest.parse.records import ParsedData, movies_frame, ratings_frame, users_frame

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
# Rough shares of genres among movies, so Drama and Comedy dominate as in MovieLens.
_GENRE_WEIGHTS = np.array([10, 6, 2, 3, 16, 6, 2, 20, 2, 1, 4, 2, 3, 8, 4, 10, 2, 1], float)
_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other",
    "programmer", "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
_ADJECTIVES = (
    "Silent", "Last", "Broken", "Golden", "Hidden", "Crimson", "Lost", "Endless", "Wild",
    "Frozen", "Secret", "Burning", "Distant", "Midnight", "Iron", "Hollow", "Electric", "Quiet",
)  # fmt: skip
_NOUNS = (
    "River", "Empire", "Garden", "Station", "Horizon", "Promise", "Harbor", "Machine", "Kingdom",
    "Summer", "Witness", "Voyage", "Frontier", "Letter", "Mirror", "Storm", "Orchard", "Signal",
    "Carnival", "Lantern",
)  # fmt: skip
_STAR_SHARES = np.array([0.06, 0.11, 0.27, 0.34])  # 1-4 stars; the rest are 5s, as in ML-100K
_MIN_PER_USER = 5
_START = pd.Timestamp("2022-01-01", tz="UTC")
_SPAN_SECONDS = 730 * 86_400
_ZIPF_EXPONENT = 1.0
_HIDDEN_FACTORS = 8
_CELLS_PER_BLOCK = 4_000_000  # users x items scored at once while sampling


def generate(
    n_users: int = 600, n_items: int = 1000, mean_ratings_per_user: int = 60, seed: int = 0
) -> ParsedData:
    """Deterministic synthetic ratings, movies and users for ``seed`` (layout "synthetic")."""
    if n_users < 1 or n_items < _MIN_PER_USER or mean_ratings_per_user < _MIN_PER_USER:
        raise ValueError(
            f"need n_users >= 1, n_items >= {_MIN_PER_USER} and "
            f"mean_ratings_per_user >= {_MIN_PER_USER}"
        )
    rng = np.random.default_rng(seed)
    genres = _item_genres(rng, n_items)
    popularity = np.log(1.0 / rng.permutation(np.arange(1, n_items + 1)) ** _ZIPF_EXPONENT)
    item_bias = rng.normal(0.0, 0.5, n_items)
    item_hidden = rng.normal(0.0, 0.4, (n_items, _HIDDEN_FACTORS))

    tastes = rng.dirichlet(np.full(len(GENRES), 0.3), n_users)
    user_hidden = rng.normal(0.0, 0.4, (n_users, _HIDDEN_FACTORS))
    counts = _ratings_per_user(rng, n_users, n_items, mean_ratings_per_user)

    users, items, affinity = _sample_pairs(
        rng, genres, popularity, tastes, item_hidden, user_hidden, counts
    )
    score = (affinity - affinity.mean()) / (affinity.std() + 1e-9)
    score += item_bias[items] + rng.normal(0.0, 0.4, n_users)[users]
    score += rng.normal(0.0, 0.6, len(score))
    stars = 1.0 + np.searchsorted(np.quantile(score, np.cumsum(_STAR_SHARES)), score)

    data_source = f"synthetic(seed={seed})"
    return ParsedData(
        layout="synthetic",
        ratings=ratings_frame(
            users + 1, items + 1, stars, _times(rng, users, n_users), _rows(len(users))
        ),
        movies=_movies(rng, genres),
        users=_users(rng, n_users),
        sources=dict.fromkeys(("ratings", "movies", "users"), data_source),
    )


def _rows(n: int) -> np.ndarray:
    """Row numbers as ``line``: the rows are generated, not derived, so loaders treat them as
    real data (``line`` 0 marks rows made up from ratings)."""
    return np.arange(1, n + 1, dtype=np.int64)


def _item_genres(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Boolean items x genres; 1-3 genres each, drawn by genre weight without repeats."""
    per_item = 1 + rng.binomial(2, 0.35, n_items)
    keys = np.log(_GENRE_WEIGHTS) + rng.gumbel(size=(n_items, len(GENRES)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return rank < per_item[:, None]


def _ratings_per_user(
    rng: np.random.Generator, n_users: int, n_items: int, mean: int
) -> np.ndarray:
    """Heavy-tailed (log-normal) counts from five up to half the items (ML-100K's top user
    rated 44% of the movies)."""
    extra = rng.lognormal(np.log(mean - _MIN_PER_USER + 1e-9) - 0.5, 1.0, n_users)
    most = max(_MIN_PER_USER, n_items // 2)
    return np.minimum(_MIN_PER_USER + np.round(extra).astype(np.int64), most)


def _sample_pairs(
    rng: np.random.Generator,
    genres: np.ndarray,
    popularity: np.ndarray,
    tastes: np.ndarray,
    item_hidden: np.ndarray,
    user_hidden: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's items without repeats, weighted by popularity x affinity (Gumbel top-k).

    Returns user and item indexes and the log-affinity of each pair.
    """
    n_users, n_items = len(tastes), len(popularity)
    genre_share = genres / genres.sum(axis=1, keepdims=True)
    block = max(1, _CELLS_PER_BLOCK // n_items)
    users, items, affinity = [], [], []
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        fit = np.log(tastes[start:stop] @ genre_share.T * len(GENRES) + 0.05)
        fit += user_hidden[start:stop] @ item_hidden.T
        keys = popularity + 1.5 * fit + rng.gumbel(size=fit.shape)
        most = int(counts[start:stop].max())
        top = np.argpartition(-keys, most - 1, axis=1)[:, :most]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), 1), 1)
        chosen = np.arange(most) < counts[start:stop, None]
        rows = np.repeat(np.arange(start, stop), counts[start:stop])
        picked = order[chosen]
        users.append(rows)
        items.append(picked)
        affinity.append(fit[rows - start, picked])
    return np.concatenate(users), np.concatenate(items), np.concatenate(affinity)


def _times(rng: np.random.Generator, users: np.ndarray, n_users: int) -> pd.Series:
    """Each user is active for a stretch (weeks to months) somewhere in two years."""
    first = rng.uniform(0.0, 0.9, n_users) * _SPAN_SECONDS
    length = np.minimum(rng.exponential(120 * 86_400, n_users) + 86_400, _SPAN_SECONDS - first)
    seconds = first[users] + rng.uniform(0.0, 1.0, len(users)) * length[users]
    return pd.Series(_START + pd.to_timedelta(seconds.astype(np.int64), unit="s"))


def _movies(rng: np.random.Generator, genres: np.ndarray) -> pd.DataFrame:
    n_items = len(genres)
    years = np.clip(2021 - rng.exponential(15.0, n_items).astype(np.int64), 1920, 2021)
    adjectives = rng.choice(_ADJECTIVES, n_items)
    nouns = rng.choice(_NOUNS, n_items)
    titles = [f"The {a} {n} ({y})" for a, n, y in zip(adjectives, nouns, years, strict=True)]
    names = np.asarray(GENRES, dtype=object)
    return movies_frame(
        np.arange(1, n_items + 1),
        titles,
        [names[row].tolist() for row in genres],
        years,
        _rows(n_items),
    )


def _users(rng: np.random.Generator, n_users: int) -> pd.DataFrame:
    return users_frame(
        np.arange(1, n_users + 1),
        _rows(n_users),
        gender=rng.choice(["M", "F"], n_users, p=[0.6, 0.4]).tolist(),
        age=np.clip(rng.normal(33.0, 11.0, n_users), 13, 75).astype(np.int64),
        occupation=rng.choice(_OCCUPATIONS, n_users).tolist(),
        zip_code=[f"{z:05d}" for z in rng.integers(0, 100_000, n_users)],
    )
