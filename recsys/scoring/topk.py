"""Top-k recommendations per user, scored in user chunks with TensorFlow.

Public API:
    top_k_chunks(user_emb, item_emb, k, *, exclude=None, users=None, chunk_size=None, block=128,
                 addend=None)
        -> Iterator[(users, items int64 [n, k], scores float32 [n, k])]   score = user·item
                                                    (+ addend(rows), a dense block, if given)
    chunk_rows(n_items, k, block=128) -> users per chunk when ``chunk_size`` is not given
    top_k_embeddings(...same...) -> (items, scores) for all of ``users`` at once
    shared_top_k_chunks(item_scores, n_users, k, *, exclude=None, users=None, chunk_size=None)
    top_k_shared(...same...) -> (items, scores)     one score vector for every user (popularity),
                                                    ranked without a score block

``users`` selects which user rows to score (default: all, in order); row j of the result
belongs to ``users[j]``. ``exclude`` is a CSR matrix [n_users, n_items] whose stored entries
(their values are ignored) are items never to recommend to that user: the training items
for evaluation, every rated item for the final recommendations. Results are sorted by
descending score, equal scores by ascending item index (``tf.math.top_k``'s order, which also
decides ties at the cut). A user with fewer than k candidate items gets the remaining columns
padded with item -1 and score NaN; NaN scores (a diverged model) rank like excluded items.

Only a [chunk, n_items] score block exists at any time, never users × items; its rows are
sized to about 256 MB. The product and the selection run in TensorFlow, on a GPU when it sees
one and on every CPU core otherwise: on a 4,096 × 100K block, side by side on this 2-core
machine, ``tf.math.top_k`` took 2.4 s where the numpy partition-and-sort it replaced took 58 s,
and the two-stage selection of :func:`_blocked_top_k` cuts the selection to a pass for block
maxima (0.54 against 3.15 ns a score for ``top_k`` over every item, side by side).
"""

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

TopK = tuple[np.ndarray, np.ndarray]
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Scores held at once: a [chunk, n_items] float32 block of about 256 MB.
_BLOCK_SCORES = 2**26
#: Items per block of the two-stage selection (:func:`_blocked_top_k`).
BLOCK = 128


def top_k_chunks(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    users: np.ndarray | None = None,
    chunk_size: int | None = None,
    block: int = BLOCK,
    addend: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[Chunk]:
    """Top-k items by dot product of final embeddings, a chunk of users at a time.

    ``addend(rows)``, given the positions in ``users`` of a chunk's users, returns a dense
    [len(rows), n_items] block added to their scores before the selection (the linear term of
    the GF-CF baseline, recsys/evaluation/spectral.py). With many items the selection runs in
    two stages (:func:`_blocked_top_k`): the items are cut into blocks of ``block``, and only
    the k blocks with the highest maxima are searched.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    item_emb = np.asarray(item_emb, dtype=np.float32)
    user_emb = np.asarray(user_emb, dtype=np.float32)
    users = np.arange(len(user_emb)) if users is None else np.asarray(users, dtype=np.int64)
    n_items = len(item_emb)
    blocked = _blocked(n_items, k, block)
    width = _width(n_items, k, block)
    items = tf.constant(np.pad(item_emb, ((0, width - n_items), (0, 0))))
    exclude = None if exclude is None else sp.csr_matrix(exclude)
    size = chunk_size or chunk_rows(n_items, k, block)
    padding = np.arange(n_items, width)
    nan_items = bool(np.isnan(item_emb).any())
    for start in range(0, len(users), size):
        chunk = users[start : start + size]
        vectors = user_emb[chunk]
        scores = tf.matmul(tf.constant(vectors), items, transpose_b=True)
        if addend is not None:
            scores = _added(scores, addend(np.arange(start, start + len(chunk))))
        rows, cols = _excluded(exclude, chunk, padding)
        if len(rows):
            at = np.stack([rows, cols], axis=1)
            scores = tf.tensor_scatter_nd_update(scores, at, tf.fill([len(at)], -np.inf))
        if nan_items or np.isnan(vectors).any():  # a pass over every score, only when needed
            scores = tf.where(tf.math.is_nan(scores), tf.constant(-np.inf, scores.dtype), scores)
        values, found = _blocked_top_k(scores, k, block) if blocked else _top_k(scores, k)
        yield (chunk, *_padded(values.numpy(), found.numpy().astype(np.int64), k))


def chunk_rows(n_items: int, k: int, block: int = BLOCK) -> int:
    """Users scored at once by :func:`top_k_chunks` when no ``chunk_size`` is given: a score
    block of about 256 MB.

    A score's last bit depends on it: the product's kernels vary with the block's shape (on
    oneDNN, users at the tail of some block sizes get other roundings). Whoever splits users
    among processes and wants the scores of one process splits at multiples of it.
    """
    return int(np.clip(_BLOCK_SCORES // max(_width(n_items, k, block), 1), 64, 8192))


def _blocked(n_items: int, k: int, block: int) -> bool:
    """Whether the two-stage selection (:func:`_blocked_top_k`) pays at this size."""
    return n_items >= 4 * block * k


def _width(n_items: int, k: int, block: int) -> int:
    """Columns of a score block: with blocks, a whole number of them (padding items score 0
    and are excluded like rated ones)."""
    return -(-n_items // block) * block if _blocked(n_items, k, block) else n_items


def shared_top_k_chunks(
    item_scores: np.ndarray,
    n_users: int,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    users: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> Iterator[Chunk]:
    """Top-k items from one score vector shared by all users (the popularity baseline).

    No score block is needed: every user's list is the global ranking with their excluded items
    skipped. With a user's excluded ranks sorted as r_0 < r_1 < ..., the j-th free rank is
    j + #{i : r_i - i ≤ j}, one ``searchsorted`` per chunk (as the BPR sampler draws negatives).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = np.asarray(item_scores, dtype=np.float32)
    n_items = len(scores)
    ranking = np.lexsort((np.arange(n_items), -scores))  # best first, ties to the lowest index
    rank_of = np.empty(n_items, np.int64)
    rank_of[ranking] = np.arange(n_items)
    users = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    exclude = sp.csr_matrix((n_users, n_items), dtype=bool) if exclude is None else exclude
    size = chunk_size or 65536
    for start in range(0, len(users), size):
        chunk = users[start : start + size]
        rows = sp.csr_matrix(exclude[chunk])
        rows.sum_duplicates()
        owner = np.repeat(np.arange(len(chunk)), np.diff(rows.indptr))
        ranks = rank_of[rows.indices]
        order = np.lexsort((ranks, owner))
        owner, ranks = owner[order], ranks[order]
        stride = n_items + k + 1
        gap_keys = owner * stride + (ranks - (np.arange(len(ranks)) - rows.indptr[owner]))
        j = np.arange(k)
        queries = np.arange(len(chunk))[:, None] * stride + j
        skipped = np.searchsorted(gap_keys, queries, side="right") - rows.indptr[:-1, None]
        position = j + skipped
        present = position < n_items
        items = np.where(present, ranking[np.minimum(position, n_items - 1)], -1)
        values = np.where(present, scores[np.maximum(items, 0)], np.nan).astype(np.float32)
        yield chunk, items.astype(np.int64), values


def top_k_embeddings(user_emb: np.ndarray, item_emb: np.ndarray, k: int, **options) -> TopK:
    """:func:`top_k_chunks` for every requested user at once."""
    return _collect(top_k_chunks(user_emb, item_emb, k, **options), k)


def top_k_shared(item_scores: np.ndarray, n_users: int, k: int, **options) -> TopK:
    """:func:`shared_top_k_chunks` for every requested user at once."""
    return _collect(shared_top_k_chunks(item_scores, n_users, k, **options), k)


def _collect(chunks: Iterator[Chunk], k: int) -> TopK:
    parts = list(chunks)
    if not parts:
        return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def _excluded(
    exclude: sp.csr_matrix | None, chunk: np.ndarray, padding: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row in chunk, item) of every excluded score of the chunk: its rows of ``exclude`` and
    the padding items of every row."""
    rows = np.empty(0, np.int64), np.empty(0, np.int64)
    if exclude is not None:
        part = exclude[chunk]
        rows = np.repeat(np.arange(len(chunk)), np.diff(part.indptr)), part.indices
    if len(padding):
        pads = np.repeat(np.arange(len(chunk)), len(padding)), np.tile(padding, len(chunk))
        rows = np.concatenate([rows[0], pads[0]]), np.concatenate([rows[1], pads[1]])
    return rows


def _added(scores: tf.Tensor, block: np.ndarray) -> tf.Tensor:
    """``scores`` plus a block of the same rows and the real items' columns (not the padding
    of a blocked selection, which scores 0)."""
    padding = int(scores.shape[1]) - block.shape[1]
    return scores + np.pad(block, ((0, 0), (0, padding))) if padding else scores + block


def _top_k(scores: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.math.top_k(scores, min(k, int(scores.shape[1])))


def _blocked_top_k(scores: tf.Tensor, k: int, block: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Exact top-k of each row, searching only the k blocks of ``block`` items with the
    highest maxima.

    Every item of a row's top-k is in one of those blocks: a block holding an item above the
    k-th best value v has its maximum above v, and there are fewer than k such items; blocks
    whose maximum equals v are taken lowest index first, as ``tf.math.top_k`` breaks ties,
    and so are the items equal to v. The candidates are kept in item order, so ties among them
    still go to the lowest item. One pass for the maxima replaces ``top_k`` over every item
    (a heap per row) by ``top_k`` over k × block candidates.
    """
    rows = tf.shape(scores)[0]
    n_blocks = int(scores.shape[1]) // block
    blocks = tf.reshape(scores, [rows, n_blocks, block])
    _, best = tf.math.top_k(tf.reduce_max(blocks, axis=2), min(k, n_blocks))
    best = tf.sort(best, axis=1)
    candidates = tf.reshape(tf.gather(blocks, best, batch_dims=1), [rows, -1])
    values, position = tf.math.top_k(candidates, k)
    items = tf.gather(best, position // block, batch_dims=1) * block + position % block
    return values, items


def _padded(values: np.ndarray, items: np.ndarray, k: int) -> TopK:
    """Excluded (-inf) entries as (-1, NaN), and rows shorter than k padded the same way."""
    missing = np.isneginf(values)
    items[missing] = -1
    values[missing] = np.nan
    if values.shape[1] < k:
        pad = k - values.shape[1]
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, pad)), constant_values=np.nan)
    return items, values
