"""A published run's ``evaluation_results``, recomputed here from what the database holds.

The run uses a temporal split at a cut-off between two rating times, so which rating is train and
which is test follows from ``rated_at`` alone; users then have from none to many test ratings,
some users have no training rating and some test items were never trained, so every rule of the
evaluation matters. Everything else is this file's own small code, not the product's: the
candidates (items with a training rating), the users and interactions evaluated (user and item
both trained), each user's ranking by the published embeddings, by training popularity or by
the GF-CF filter (dense matrices and numpy's exact SVD here, where the product uses sparse
products and ARPACK's SVD) with its training items left out (ties go to the lower movie id,
as documented in recsys/scoring/topk.py), and the metric formulas of docs/running.md.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.pipeline import run
from recsys.storage import schema
from tests.integration._ranking import embeddings, figures, ranking
from tests.integration._run_data import fast_config, populated_schema, quiet

VERSION = "recomputed"
KS = (3, 10)
#: Share of the ratings (by time) after the cut-off.
TEST_SHARE = 0.2
#: GF-CF's weight of the low-pass filter, given explicitly rather than relying on the default.
#: Its rank is chosen at the widest gap of the training spectrum (:func:`_gap_rank`).
SPECTRAL_ALPHA = 0.5
#: A movie rated only after the cut-off, by the first users with a training rating: a test item
#: the model never trained (the synthetic catalogue has none of its own at this cut-off).
LATE_MOVIE, LATE_RATERS = 99_999, 5


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[tuple[sa.Engine, datetime, int]]:
    """The synthetic ratings and one run published with a temporal split; its cut-off and
    GF-CF's rank."""
    with populated_schema(database_url) as (engine, _name):
        with engine.connect() as conn:
            times = sorted(conn.execute(sa.select(schema.ratings.c.rated_at)).scalars())
        first_test = times[round(len(times) * (1 - TEST_SHARE))]
        # Half a second before a rating time (ratings are at whole seconds): none sits on it.
        cutoff = first_test - timedelta(milliseconds=500)
        assert times[0] < cutoff < times[-1]
        _add_late_movie(engine, cutoff, times[-1] + timedelta(days=1))
        with engine.connect() as conn:
            rank = _gap_rank(_split(conn, cutoff)[0])
        config = fast_config(
            seed=5,
            split="temporal",
            cutoff=cutoff,
            eval_ks=KS,
            spectral_rank=rank,
            spectral_alpha=SPECTRAL_ALPHA,
        )
        run(engine, VERSION, config, report=quiet)
        yield engine, cutoff, rank


def _add_late_movie(engine: sa.Engine, cutoff: datetime, rated_at: datetime) -> None:
    ratings = schema.ratings
    with engine.begin() as conn:
        raters = (
            conn.execute(
                sa.select(ratings.c.user_id)
                .where(ratings.c.rated_at < cutoff)
                .group_by(ratings.c.user_id)
                .order_by(ratings.c.user_id)
                .limit(LATE_RATERS)
            )
            .scalars()
            .all()
        )
        conn.execute(sa.insert(schema.movies).values(movie_id=LATE_MOVIE, title="Late (2024)"))
        conn.execute(
            sa.insert(ratings),
            [
                {"user_id": u, "movie_id": LATE_MOVIE, "rating": 4, "rated_at": rated_at}
                for u in raters
            ],
        )


def _split(conn: sa.Connection, cutoff: datetime) -> tuple[dict, dict]:
    """Each user's training and test movies at the cut-off."""
    ratings = schema.ratings
    train, test = defaultdict(set), defaultdict(set)
    for user, movie, rated_at in conn.execute(
        sa.select(ratings.c.user_id, ratings.c.movie_id, ratings.c.rated_at)
    ):
        (test if rated_at >= cutoff else train)[user].add(movie)
    return train, test


def _recomputed(conn: sa.Connection, cutoff: datetime, rank: int) -> tuple[dict, int, Counter]:
    """{(model, metric, k): mean over evaluated users}, how many users were evaluated, and how
    many test interactions were left out because their user or their item was not trained."""
    train, test = _split(conn, cutoff)
    popularity = Counter(movie for movies in train.values() for movie in movies)
    users = embeddings(conn, schema.user_embeddings, VERSION)
    items = embeddings(conn, schema.item_embeddings, VERSION)
    # Only trained users and items were embedded and published.
    assert set(users) == set(train) and set(items) == set(popularity)

    gf_cf = _gf_cf_scores(train, rank)
    per_user: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    left_out: Counter = Counter()
    for user, movies in test.items():
        if user not in users:
            left_out["user not trained"] += len(movies)
            continue
        relevant = movies & set(items)
        left_out["item not trained"] += len(movies - relevant)
        if not relevant:
            continue
        scores = {movie: float(users[user] @ vector) for movie, vector in items.items()}
        rankings = {
            "lightgcn": ranking(scores, train[user]),
            "popularity": ranking(dict(popularity), train[user]),
            "gf-cf": ranking(gf_cf[user], train[user]),
        }
        for model, ranked in rankings.items():
            for k in KS:
                for metric, value in figures(ranked, relevant, k).items():
                    per_user[model, metric, k].append(value)
    (n_users,) = {len(values) for values in per_user.values()}
    return {key: float(np.mean(values)) for key, values in per_user.items()}, n_users, left_out


def _normalized(train: dict[int, set[int]]) -> tuple[list, list, np.ndarray, np.ndarray]:
    """Trained users, trained movies, the dense binary R and R̂ = D_u^-1/2 R D_i^-1/2."""
    users = sorted(train)
    movies = sorted({movie for movies in train.values() for movie in movies})
    column = {movie: j for j, movie in enumerate(movies)}
    r = np.zeros((len(users), len(movies)))
    for i, user in enumerate(users):
        r[i, [column[movie] for movie in train[user]]] = 1.0
    user_degree, movie_degree = r.sum(axis=1), r.sum(axis=0)
    return users, movies, r, r / np.sqrt(user_degree)[:, None] / np.sqrt(movie_degree)[None, :]


def _gap_rank(train: dict[int, set[int]]) -> int:
    """The rank (2 to 30) after which R̂'s spectrum drops most: there the top singular subspace
    is well defined, so any SVD method finds the same one (within a flat stretch of the
    spectrum, methods legitimately differ, and so would the filters)."""
    values = np.linalg.svd(_normalized(train)[3], compute_uv=False)
    return int(np.argmax(values[1:30] / values[2:31])) + 2


def _gf_cf_scores(train: dict[int, set[int]], rank: int) -> dict[int, dict[int, float]]:
    """GF-CF (Shen et al., CIKM 2021) of every trained user over the trained movies, from dense
    matrices: s_u = r_u R̂ᵀR̂ + α r_u D_i^-1/2 V Vᵀ D_i^1/2, V the top right singular vectors
    of R̂ = D_u^-1/2 R D_i^-1/2."""
    users, movies, r, normalized = _normalized(train)
    movie_degree = r.sum(axis=0)
    _, _, right = np.linalg.svd(normalized, full_matrices=False)
    basis = right[:rank].T
    low_pass = (r / np.sqrt(movie_degree)) @ basis @ (basis.T * np.sqrt(movie_degree))
    scores = r @ normalized.T @ normalized + SPECTRAL_ALPHA * low_pass
    return {user: dict(zip(movies, scores[i], strict=True)) for i, user in enumerate(users)}


def test_stored_evaluation_equals_the_recomputed_one(
    published: tuple[sa.Engine, datetime, int],
) -> None:
    engine, cutoff, rank = published
    results = schema.evaluation_results
    with engine.connect() as conn:
        expected, n_users, left_out = _recomputed(conn, cutoff, rank)
        stored = conn.execute(sa.select(results).where(results.c.version == VERSION)).all()
        rated_users = conn.execute(
            sa.select(sa.func.count(sa.distinct(schema.ratings.c.user_id)))
        ).scalar_one()
    assert {(r.model, r.metric, r.k): r.value for r in stored} == pytest.approx(expected, rel=1e-9)
    assert {r.users_counted for r in stored} == {n_users}
    # Every rule was needed: test interactions of untrained users and of untrained items were
    # left out, and many rated users had no test interaction to be averaged over.
    assert left_out["user not trained"] > 0 and left_out["item not trained"] >= LATE_RATERS
    assert 0 < n_users < rated_users / 2
