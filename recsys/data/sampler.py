"""BPR training triples (user, positive item, negative item), vectorised with numpy.

Public API:
    BprSampler(users, items, n_items, seed=0)
        .n_samples                  -> int, distinct training positives = triples per epoch
        .excluded_users             -> np.ndarray, users that have every item (never sampled)
        .negatives(users)           -> np.ndarray, one uniform non-positive item per user
        .batch(size)                -> (users, positives, negatives) int32 arrays of ``size``,
                                   ordered by user

Triples are drawn like the LightGCN reference code: the user uniformly among users with a
sampleable positive, then one of that user's positives uniformly, then a negative. Each batch
is drawn when asked for, so memory follows the batch, not the epoch (20M triples a 20M-
interaction epoch would otherwise hold at once). Drawing
users uniformly (rather than visiting every positive once) gives light users the same
weight as heavy ones, as the per-user averaged metrics do; on ML-100K it raised NDCG@10
by about 0.007 at equal time.

Negatives are exactly uniform over the items a user does NOT have in training, without
rejection loops: with a user's positives sorted as p_0 < p_1 < ..., the count of
non-positives below p_j is p_j - j, so the r-th non-positive item is
r + #{j : p_j - j <= r} — one ``searchsorted`` over a global sorted key array per batch.
"""

import numpy as np

from recsys.ingest.load.distinct_ids import sorted_distinct

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


class BprSampler:
    """Samples BPR triples from the training interactions of one split.

    Duplicate (user, item) pairs are collapsed. Users who have every item have no possible
    negative; they are never sampled (listed in ``excluded_users``) rather than paired
    with a fake negative.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        n_items: int,
        seed: int | np.random.Generator = 0,
    ) -> None:
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._n_items = int(n_items)
        keys = sorted_distinct(np.asarray(users, dtype=np.int64) * n_items + np.asarray(items))
        pos_users, items = np.divmod(keys, n_items)
        self._items = items.astype(np.int32)
        self._degree = np.bincount(pos_users)
        self._starts = np.r_[0, np.cumsum(self._degree)[:-1]]
        self.excluded_users = np.flatnonzero(self._degree >= n_items)
        self._active_users = np.flatnonzero((self._degree > 0) & (self._degree < n_items))
        self.n_samples = int(self._degree[self._active_users].sum())
        # Per positive: user block offset + number of non-positives below it (sorted).
        self._stride = n_items + 1
        rank_in_user = np.arange(len(keys)) - self._starts[pos_users]
        self._gap_keys = pos_users * self._stride + (items - rank_in_user)

    def negatives(self, users: np.ndarray) -> np.ndarray:
        """One item per entry of ``users`` (each must have a non-training item), uniform."""
        users = np.asarray(users, dtype=np.int64)
        r = self._rng.integers(0, self._n_items - self._degree[users])
        below = np.searchsorted(self._gap_keys, users * self._stride + r, side="right")
        return r + (below - self._starts[users])

    def batch(self, size: int, candidates: int = 1) -> Batch:
        """``size`` fresh triples; call only when ``n_samples`` > 0. With ``candidates`` > 1
        the negatives are a (size, candidates) array: that many uniform draws per triple, from
        which the training step picks one."""
        # Drawn in sorted order: the triples' order does not matter to a step, and sorted users
        # turn every lookup below (and the step's gathers) into a forward sweep. At 20M
        # interactions unsorted draws made each searchsorted query a chain of cache misses:
        # 4.1 s a batch of 1.25M against 0.3 s sorted.
        users = self._active_users[np.sort(self._rng.integers(0, len(self._active_users), size))]
        positives = self._items[self._starts[users] + self._rng.integers(0, self._degree[users])]
        negatives = self.negatives(np.repeat(users, candidates)).reshape(size, candidates)
        if candidates == 1:
            negatives = negatives[:, 0]
        return users.astype(np.int32), positives, negatives.astype(np.int32)
