"""Top-k ranking metrics with binary relevance, vectorised over users.

Public API:
    METRICS                                               -> names computed, in report order
    ranking_metrics(recommended, relevant, ks, users=None) -> RankingMetrics(values, n_users)

Definitions follow Microsoft Recommenders' ``python_evaluation`` (which follows Spark
MLlib). For one user with test set T (|T| ≥ 1), ranked list r_1..r_k and hit indicator
h_i = [r_i ∈ T]:
    precision@k = Σ h_i / k                  (k even when fewer than k items were ranked)
    recall@k    = Σ h_i / |T|
    ndcg@k      = Σ h_i / log2(i+1)  ÷  Σ_{i ≤ min(|T|, k)} 1 / log2(i+1)
    map@k       = Σ_i h_i · (Σ_{j≤i} h_j) / i  ÷  min(|T|, k)    Recommenders' ``map_at_k``
    map_full@k  = the same sum  ÷  |T|          Recommenders' ``map`` (and its ``map_at_k``
                  before v1.2); the definition behind the published MAP 0.13 LightGCN figure
    hit_rate@k  = [Σ h_i > 0]
    mrr@k       = 1 / (rank of the first hit), 0 without a hit
Each is averaged over the users with at least one test item; users without test items are
left out of the average (not counted as zeros) and ``n_users`` says how many were counted.
Padding entries (item -1, see recsys/scoring/topk.py) never hit.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

METRICS = ("precision", "recall", "ndcg", "map", "map_full", "hit_rate", "mrr")


@dataclass(frozen=True)
class RankingMetrics:
    """``values[(metric, k)]`` averaged over ``n_users`` users with test items."""

    values: dict[tuple[str, int], float]
    n_users: int


def ranking_metrics(
    recommended: np.ndarray,
    relevant: sp.csr_matrix,
    ks: Sequence[int],
    users: np.ndarray | None = None,
) -> RankingMetrics:
    """Evaluate ranked lists against test items.

    ``recommended`` is [n, K] item indices, best first, row j for user ``users[j]`` (default
    row j is user j); K must be at least max(ks). ``relevant`` is a CSR [n_users, n_items]
    whose stored entries are each user's test items.
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    users = np.arange(len(recommended)) if users is None else np.asarray(users, dtype=np.int64)
    if recommended.shape[1] < max(ks):
        raise ValueError(f"need at least {max(ks)} ranked items, got {recommended.shape[1]}")
    relevant = sp.csr_matrix(relevant, dtype=bool, copy=True)
    relevant.sum_duplicates()
    n_relevant = np.diff(relevant.indptr)[users]
    counted = n_relevant > 0
    users, recommended, n_relevant = users[counted], recommended[counted], n_relevant[counted]
    values: dict[tuple[str, int], float] = {}
    if len(users) == 0:
        return RankingMetrics({(m, k): float("nan") for k in ks for m in METRICS}, 0)
    hits = _hits(recommended[:, : max(ks)], users, relevant).astype(np.float64)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal_cumulative = np.r_[0.0, np.cumsum(discount)]
    precision_at_hit = hits * np.cumsum(hits, axis=1) / ranks
    first_hit = np.argmax(hits > 0, axis=1)
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        ap_sum = precision_at_hit[:, :k].sum(axis=1)
        per_user = {
            "precision": n_hits / k,
            "recall": n_hits / n_relevant,
            "ndcg": (h @ discount[:k]) / ideal_cumulative[np.minimum(n_relevant, k)],
            "map": ap_sum / np.minimum(n_relevant, k),
            "map_full": ap_sum / n_relevant,
            "hit_rate": (n_hits > 0).astype(np.float64),
            "mrr": np.where(n_hits > 0, 1.0 / (first_hit + 1.0), 0.0),
        }
        for name in METRICS:
            values[(name, k)] = float(per_user[name].mean())
    return RankingMetrics(values, len(users))


def _hits(recommended: np.ndarray, users: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean [n, K]: is recommended[j, i] a test item of users[j]? One searchsorted."""
    n_items = relevant.shape[1]
    relevant.sort_indices()
    rows = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    keys = rows * n_items + relevant.indices
    query = users[:, None] * n_items + recommended
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    return (recommended >= 0) & (keys[pos] == query)
