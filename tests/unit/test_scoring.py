"""Chunked top-k equals brute force and never returns an excluded item."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.scoring.topk import top_k_embeddings, top_k_shared


def _brute_force(scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    masked = np.where(exclude, -np.inf, scores)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(masked, order, axis=1) == -np.inf, -1, order)


def test_matches_brute_force_and_respects_exclusions() -> None:
    rng = np.random.default_rng(0)
    user_emb = rng.normal(size=(37, 8)).astype(np.float32)
    item_emb = rng.normal(size=(23, 8)).astype(np.float32)
    exclude_dense = rng.random((37, 23)) < 0.3
    exclude_dense[5, :20] = True  # only 3 candidates left for user 5
    exclude = sp.csr_matrix(exclude_dense)
    items, scores = top_k_embeddings(user_emb, item_emb, 5, exclude=exclude, chunk_size=4)
    np.testing.assert_array_equal(items, _brute_force(user_emb @ item_emb.T, exclude_dense, 5))
    assert items.shape == scores.shape == (37, 5)
    valid = items >= 0
    assert not exclude_dense[np.nonzero(valid)[0], items[valid]].any()
    np.testing.assert_allclose(
        scores[valid], (user_emb @ item_emb.T)[np.nonzero(valid)[0], items[valid]], rtol=1e-5
    )
    assert (items[5, 3:] == -1).all() and np.isnan(scores[5, 3:]).all()
    assert (np.diff(scores[valid.all(axis=1)], axis=1) <= 0).all()


def test_k_beyond_item_count_and_user_subset() -> None:
    rng = np.random.default_rng(1)
    user_emb, item_emb = rng.normal(size=(6, 4)), rng.normal(size=(3, 4))
    items, scores = top_k_embeddings(user_emb, item_emb, 5, users=np.array([4, 1]))
    expected = np.argsort(-(user_emb[[4, 1]] @ item_emb.T), axis=1)
    np.testing.assert_array_equal(items[:, :3], expected)
    assert (items[:, 3:] == -1).all() and np.isnan(scores[:, 3:]).all()


def test_shared_scores_break_ties_by_item_index() -> None:
    scores = np.array([5.0, 1.0, 5.0, 3.0, 5.0])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool))
    items, values = top_k_shared(scores, 2, 3, exclude=exclude)
    np.testing.assert_array_equal(items, [[2, 4, 3], [0, 2, 4]])
    np.testing.assert_array_equal(values, [[5, 5, 3], [5, 5, 5]])
    empty_items, _ = top_k_shared(scores, 2, 3, users=np.array([], dtype=np.int64))
    assert empty_items.shape == (0, 3)


@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 5), st.floats(0.0, 0.95))
@settings(max_examples=80, deadline=None)
def test_blocked_selection_matches_brute_force(
    seed: int, k: int, block: int, density: float
) -> None:
    """The two-stage selection (blocks of ``block`` items, only the best k blocks searched)
    against a full sort: integer embeddings make many tied scores, some at the cut; excluded
    items, padding items and rows with fewer than k candidates included."""
    rng = np.random.default_rng(seed)
    n_users = int(rng.integers(1, 12))
    n_items = int(rng.integers(4 * block * k, 4 * block * k + 3 * block))
    user_emb = rng.integers(-1, 2, (n_users, 3)).astype(np.float32)
    item_emb = rng.integers(-1, 2, (n_items, 3)).astype(np.float32)
    exclude_dense = rng.random((n_users, n_items)) < density
    exclude_dense[0, : n_items - 1] = True  # one candidate left
    items, values = top_k_embeddings(
        user_emb, item_emb, k, exclude=sp.csr_matrix(exclude_dense), block=block, chunk_size=5
    )
    scores = user_emb @ item_emb.T
    np.testing.assert_array_equal(items, _brute_force(scores, exclude_dense, k))
    present = items >= 0
    np.testing.assert_array_equal(values[present], scores[np.nonzero(present)[0], items[present]])


@given(st.integers(0, 10_000), st.integers(1, 12), st.floats(0.0, 0.9))
@settings(max_examples=60, deadline=None)
def test_shared_ranking_without_a_score_block_matches_brute_force(
    seed: int, k: int, density: float
) -> None:
    """The popularity path skips excluded ranks arithmetically: against a full sort, with many
    ties (integer scores), users who excluded nearly everything, and chunks of odd sizes."""
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 25))
    scores = rng.integers(0, 4, n_items).astype(np.float64)
    exclude_dense = rng.random((n_users, n_items)) < density
    items, values = top_k_shared(
        scores, n_users, k, exclude=sp.csr_matrix(exclude_dense), chunk_size=int(rng.integers(1, 7))
    )
    expected = _brute_force(np.tile(scores, (n_users, 1)), exclude_dense, k)
    width = min(k, n_items)
    np.testing.assert_array_equal(items[:, :width], expected[:, :width])
    assert (items[:, width:] == -1).all()
    present = items >= 0
    np.testing.assert_array_equal(values[present], scores[items[present]])
    assert np.isnan(values[~present]).all()


def test_ties_at_the_cut_go_to_the_lowest_item_index() -> None:
    scores = np.array([1.0, 2.0, 2.0, 2.0, 2.0, 0.5, 2.0, 3.0])
    items, values = top_k_shared(scores, 1, 3)
    np.testing.assert_array_equal(items, [[7, 1, 2]])
    np.testing.assert_array_equal(values, [[3, 2, 2]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 0, 0, 1]], dtype=bool))
    items, _ = top_k_shared(scores, 1, 4, exclude=exclude)
    np.testing.assert_array_equal(items, [[2, 3, 4, 6]])


def test_nan_scores_rank_as_excluded() -> None:
    """A diverged model's NaN embeddings: the item is never ranked, the user gets no list."""
    user_emb = np.array([[1.0, 0.0], [np.nan, 1.0]], np.float32)
    item_emb = np.array([[1.0, 0.0], [np.nan, 0.0], [0.5, 0.0]], np.float32)
    items, values = top_k_embeddings(user_emb, item_emb, 3)
    np.testing.assert_array_equal(items, [[0, 2, -1], [-1, -1, -1]])
    assert np.isnan(values[0, 2]) and np.isnan(values[1]).all()
