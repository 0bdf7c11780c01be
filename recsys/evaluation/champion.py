"""An earlier version (the champion) scored on this run's test set, beside the new model.

The champion ranks with its own stored final embeddings, on the same users and the same held-out
items as the new model and the baseline, with the same training items excluded. What it does not
know counts against it, as it would in production:
- a user it has no embedding for (new since it was trained) gets a list without hits, and is
  still counted, so all three rows average over the same users;
- an item it has no embedding for is never in its lists, but still counts as a test item.

Public API:
    ChampionEmbeddings(users, user_emb, items, item_emb)
    champion_metrics(champion, exclude, relevant, ks) -> RankingMetrics
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.evaluation.metrics import RankingMetrics, ranking_metrics
from recsys.scoring.topk import top_k_embeddings


@dataclass(frozen=True)
class ChampionEmbeddings:
    """The champion's final embeddings for the users (this run's user indices) and the candidate
    items (positions among this run's candidates) it knows; both index arrays sorted."""

    users: np.ndarray
    user_emb: np.ndarray
    items: np.ndarray
    item_emb: np.ndarray


def champion_metrics(
    champion: ChampionEmbeddings,
    exclude: sp.csr_matrix,
    relevant: sp.csr_matrix,
    ks: Sequence[int],
) -> RankingMetrics:
    """The champion's ranking metrics for every user with test items (users × candidates)."""
    users = np.flatnonzero(np.diff(relevant.indptr))
    recommended = np.full((len(users), max(ks)), -1, np.int64)
    at = np.minimum(np.searchsorted(champion.users, users), max(len(champion.users) - 1, 0))
    known = champion.users[at] == users if len(champion.users) else np.zeros(len(users), bool)
    if known.any() and len(champion.items):
        every = np.array_equal(champion.items, np.arange(exclude.shape[1]))
        own = exclude if every else exclude[:, champion.items]
        items, _ = top_k_embeddings(
            champion.user_emb[at[known]],
            champion.item_emb,
            max(ks),
            exclude=own[users[known]],
        )
        recommended[known] = np.where(items >= 0, champion.items[np.maximum(items, 0)], -1)
    return ranking_metrics(recommended, relevant, ks, users=users)
