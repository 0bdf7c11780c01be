"""Synthetic interactions at scale: exact, distinct, deterministic, skewed like real feedback,
learnable, and written as a file ``ingest csv`` reads back unchanged."""

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from recsys.ingest.parse.csvfile import parse_csv
from recsys.synthetic import interactions as synthetic
from recsys.synthetic.interactions import (
    Interactions,
    default_shape,
    interaction_chunks,
    joined,
    write_csv,
)

N = 60_000


@pytest.fixture(scope="module")
def data() -> Interactions:
    users, items = default_shape(N)
    return joined(interaction_chunks(N, users, items, seed=5))


def test_default_shapes_are_the_benchmark_sizes() -> None:
    assert default_shape(1_000_000) == (50_000, 20_000)
    assert default_shape(20_000_000) == (1_000_000, 100_000)


def test_exact_count_distinct_pairs_and_ids_in_range(data: Interactions) -> None:
    users, items = default_shape(N)
    assert len(data) == N
    pairs = data.user_id * (items + 1) + data.item_id
    assert len(np.unique(pairs)) == N
    assert data.user_id.min() >= 1 and data.user_id.max() <= users
    assert data.item_id.min() >= 1 and data.item_id.max() <= items
    assert len(np.unique(data.user_id)) == users  # every user has interactions
    assert np.all(np.diff(data.user_id) >= 0)  # users in id order


def test_same_seed_same_data_other_seed_other_data(data: Interactions) -> None:
    users, items = default_shape(N)
    again = joined(interaction_chunks(N, users, items, seed=5))
    other = joined(interaction_chunks(N, users, items, seed=6))
    for name in ("user_id", "item_id", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(data, name), getattr(again, name))
    assert not np.array_equal(data.item_id, other.item_id)


def test_each_chunk_holds_whole_users_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "USERS_PER_CHUNK", 700)
    users, items = default_shape(N)
    chunks = list(interaction_chunks(N, users, items, seed=5))
    assert len(chunks) == -(-users // 700)
    for number, chunk in enumerate(chunks):
        first, last = number * 700 + 1, min((number + 1) * 700, users)
        assert (chunk.user_id.min(), chunk.user_id.max()) == (first, last)
    assert sum(len(chunk) for chunk in chunks) == N


def test_activity_and_popularity_are_heavy_tailed(data: Interactions) -> None:
    for ids in (data.user_id, data.item_id):
        counts = np.sort(np.bincount(ids)[1:])[::-1]
        counts = counts[counts > 0]
        top_tenth = counts[: len(counts) // 10].sum() / counts.sum()
        assert 0.3 < top_tenth < 0.6  # a tenth would hold 0.1 if flat; Amazon-Book: 0.38-0.44
        assert counts[0] > 10 * np.median(counts)


def test_stars_and_times_look_real(data: Interactions) -> None:
    shares = np.bincount(data.rating.astype(int), minlength=6)[1:] / len(data)
    np.testing.assert_allclose(shares, [0.06, 0.11, 0.27, 0.34, 0.22], atol=0.01)
    span = data.timestamp.max() - data.timestamp.min()
    assert 365 * 86_400 < span <= 731 * 86_400


def test_tastes_are_learnable(data: Interactions) -> None:
    """Users keep to a few topics, so items seen together predict each user's held-out item:
    item co-occurrence ranks it in the top 20 far more often than popularity does."""
    users, items = default_shape(N)
    rng = np.random.default_rng(0)
    starts = np.flatnonzero(np.r_[True, np.diff(data.user_id) > 0])
    held = starts + rng.integers(0, np.diff(np.r_[starts, len(data)]))  # one per user
    train = np.ones(len(data), dtype=bool)
    train[held] = False
    seen = csr_matrix(
        (np.ones(train.sum()), (data.user_id[train] - 1, data.item_id[train] - 1)),
        shape=(users, items),
    )
    together = (seen.T @ seen).tocsr()
    together.setdiag(0)
    popularity = np.asarray(seen.sum(axis=0)).ravel()

    def hit_rate(scores: np.ndarray) -> float:
        scores[seen.nonzero()] = -np.inf
        top = np.argpartition(-scores, 20, axis=1)[:, :20]
        return (top == (data.item_id[held] - 1)[:, None]).any(axis=1).mean()

    model = hit_rate((seen @ together).toarray())
    baseline = hit_rate(np.tile(popularity, (users, 1)).astype(float))
    assert model > 1.4 * baseline


def test_written_file_reads_back_as_the_same_interactions(tmp_path: Path) -> None:
    users, items = default_shape(N)
    path = tmp_path / "x.csv"
    assert write_csv(path, interaction_chunks(N, users, items, seed=2)) == N
    assert path.read_text().startswith("user_id,item_id,rating,timestamp\n")
    parsed = parse_csv(path).ratings
    expected = joined(interaction_chunks(N, users, items, seed=2))
    np.testing.assert_array_equal(parsed["user_id"], expected.user_id)
    np.testing.assert_array_equal(parsed["movie_id"], expected.item_id)
    np.testing.assert_array_equal(parsed["rating"], expected.rating)
    seconds = parsed["rated_at"].astype("int64") // 10**9
    np.testing.assert_array_equal(seconds, expected.timestamp)


def test_implicit_feedback_without_times(tmp_path: Path) -> None:
    chunks = interaction_chunks(600, 100, 400, ratings=False, timestamps=False)
    write_csv(tmp_path / "x.csv", chunks)
    assert (tmp_path / "x.csv").read_text().startswith("user_id,item_id\n")
    assert parse_csv(tmp_path / "x.csv").ratings["rating"].isna().all()


def test_sizes_that_cannot_be_met_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        list(interaction_chunks(100, 50, 100))  # fewer than 3 per user
    with pytest.raises(ValueError, match="do not fit"):
        list(interaction_chunks(10_000, 10, 100))  # more than 5% of the items each
