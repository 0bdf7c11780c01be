"""Top-k recommendations per user, scored in user chunks.

Public API:
    top_k_embeddings(user_emb, item_emb, k, *, exclude=None, users=None, chunk_size=1024)
        -> (items int64 [n, k], scores float32 [n, k])   score = user·item
    top_k_shared(item_scores, n_users, k, *, exclude=None, users=None, chunk_size=1024)
        -> (items, scores)                              one score vector for every user

``users`` selects which user rows to score (default: all, in order); row j of the result
belongs to ``users[j]``. ``exclude`` is a CSR matrix [n_users, n_items] whose stored entries
(their values are ignored) are items never to recommend to that user: the training items
for evaluation, every rated item for the final recommendations. Results are sorted by
descending score, equal scores by ascending item index. A user with fewer than k
candidate items gets the remaining columns padded with item -1 and score NaN.
Only a [chunk_size, n_items] score block exists at any time, never users × items.
"""

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

TopK = tuple[np.ndarray, np.ndarray]


def top_k_embeddings(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    users: np.ndarray | None = None,
    chunk_size: int = 1024,
) -> TopK:
    """Top-k items by dot product of final embeddings."""
    user_emb = np.asarray(user_emb, dtype=np.float32)
    item_emb_t = np.ascontiguousarray(np.asarray(item_emb, dtype=np.float32).T)
    users = np.arange(len(user_emb)) if users is None else np.asarray(users, dtype=np.int64)
    return _chunked_top_k(lambda u: user_emb[u] @ item_emb_t, users, k, exclude, chunk_size)


def top_k_shared(
    item_scores: np.ndarray,
    n_users: int,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    users: np.ndarray | None = None,
    chunk_size: int = 1024,
) -> TopK:
    """Top-k items from one score vector shared by all users (the popularity baseline)."""
    row = np.asarray(item_scores, dtype=np.float32)
    users = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    return _chunked_top_k(lambda u: np.tile(row, (len(u), 1)), users, k, exclude, chunk_size)


def _chunked_top_k(
    score: Callable[[np.ndarray], np.ndarray],
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    chunk_size: int,
) -> TopK:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    exclude = None if exclude is None else sp.csr_matrix(exclude)
    items_out = np.full((len(users), k), -1, dtype=np.int64)
    scores_out = np.full((len(users), k), np.nan, dtype=np.float32)
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size]
        scores = score(chunk)
        if exclude is not None:
            rows = exclude[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
        items, values = _top_k_rows(scores, k)
        items_out[start : start + len(chunk), : items.shape[1]] = items
        scores_out[start : start + len(chunk), : items.shape[1]] = values
    return items_out, scores_out


def _top_k_rows(scores: np.ndarray, k: int) -> TopK:
    """Per-row top-k of a score block; ties at the cut go to the lowest item indices.

    ``np.partition`` finds each row's k-th best score v; the candidates are the items
    above v plus as many items equal to v, lowest index first, as are needed to make k.
    -inf entries (excluded items) that fill up a short row become (-1, NaN); NaN scores
    (from a diverged model) rank like excluded items instead of breaking the selection.
    """
    scores[np.isnan(scores)] = -np.inf
    kk = min(k, scores.shape[1])
    if kk == 0:
        return np.empty((len(scores), 0), np.int64), np.empty((len(scores), 0), np.float32)
    kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1 : kk]
    above = scores > kth
    at_cut = scores == kth
    needed = kk - above.sum(axis=1, keepdims=True)
    chosen = above | (at_cut & (np.cumsum(at_cut, axis=1) <= needed))
    candidates = np.nonzero(chosen)[1].reshape(len(scores), kk)
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=-1)
    items = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    values = np.take_along_axis(values, order, axis=1)
    missing = np.isneginf(values)
    items[missing] = -1
    values[missing] = np.nan
    return items, values
