"""Held-out evaluation of the model beside the popularity and GF-CF baselines.

Public API:
    EvaluationRow(model, metric, k, value, n_users)   a figure of "model", "baseline" (popularity),
                                                      "spectral" (GF-CF) or "champion"
    embedding_metrics(user_emb, item_emb, exclude, relevant, ks) -> RankingMetrics
    evaluate(user_emb, item_emb, train_users, train_items, test_users, test_items, ks=(10,),
             champion=None) -> list[EvaluationRow]
    evaluate_holdout(user_emb, item_emb, snapshot, parts, ks, champion=None)
        -> the same for a snapshot's split (recsys/data/holdout.py)
    evaluate_spectral(snapshot, parts, ks, rank=None, alpha=0.3)
        -> (the GF-CF rows, its settings): fitted on the split's training interactions and
        judged on the same users, items, exclusions and test items (recsys/evaluation/spectral.py)
    holdout_sets(snapshot, parts) -> (train users, train items, test users, test items)
        of a split, items as positions among the candidates
    BASELINE_ROWS                     the ``model`` names of baselines' rows

Only users with at least one test item are scored; each one's training items are excluded
from its ranking, so a model is never rewarded for recommending what the user already has.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.data.graph import interaction_matrix
from recsys.data.holdout import Holdout
from recsys.data.snapshot import Snapshot
from recsys.evaluation.baseline import popularity_scores
from recsys.evaluation.champion import ChampionEmbeddings, champion_metrics
from recsys.evaluation.metrics import METRICS, RankingMetrics, ranking_metrics
from recsys.evaluation.spectral import DEFAULT_ALPHA, filter_rank, spectral_filter, spectral_top_k
from recsys.scoring.topk import top_k_embeddings, top_k_shared

#: The ``model`` names of the baselines' rows: popularity and GF-CF.
BASELINE_ROWS = ("baseline", "spectral")


@dataclass(frozen=True)
class EvaluationRow:
    """One figure: ``value`` of ``metric``@``k`` for ``model``, averaged over ``n_users``."""

    model: str
    metric: str
    k: int
    value: float
    n_users: int


def embedding_metrics(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    exclude: sp.csr_matrix,
    relevant: sp.csr_matrix,
    ks: Sequence[int],
) -> RankingMetrics:
    """Rank by embedding dot product for users with relevant items, then score the lists."""
    users = np.flatnonzero(np.diff(relevant.indptr))
    items, _ = top_k_embeddings(user_emb, item_emb, max(ks), exclude=exclude, users=users)
    return ranking_metrics(items, relevant, ks, users=users)


def evaluate(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    train_users: np.ndarray,
    train_items: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    ks: Sequence[int] = (10,),
    champion: ChampionEmbeddings | None = None,
) -> list[EvaluationRow]:
    """Rows for every metric in ``metrics.METRICS`` and cut-off: model, baseline, then the
    champion (an earlier version, recsys/evaluation/champion.py) when one is given."""
    n_users, n_items = len(user_emb), len(item_emb)
    exclude = interaction_matrix(train_users, train_items, n_users, n_items)
    relevant = interaction_matrix(test_users, test_items, n_users, n_items)
    users = np.flatnonzero(np.diff(relevant.indptr))
    popular, _ = top_k_shared(
        popularity_scores(train_items, n_items), n_users, max(ks), exclude=exclude, users=users
    )
    results = {
        "model": embedding_metrics(user_emb, item_emb, exclude, relevant, ks),
        "baseline": ranking_metrics(popular, relevant, ks, users=users),
    }
    if champion is not None:
        results["champion"] = champion_metrics(champion, exclude, relevant, ks)
    return _rows(results, ks)


def _rows(results: dict[str, RankingMetrics], ks: Sequence[int]) -> list[EvaluationRow]:
    return [
        EvaluationRow(name, metric, k, result.values[(metric, k)], result.n_users)
        for name, result in results.items()
        for k in ks
        for metric in METRICS
    ]


def evaluate_holdout(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    snapshot: Snapshot,
    parts: Holdout,
    ks: Sequence[int],
    champion: ChampionEmbeddings | None = None,
) -> list[EvaluationRow]:
    """:func:`evaluate` on a snapshot's split: a model's embeddings of every user and item
    ranked over the candidates, against the test interactions it can be judged on."""
    return evaluate(
        user_emb,
        item_emb[parts.candidates],
        *holdout_sets(snapshot, parts),
        ks,
        champion=champion,
    )


def evaluate_spectral(
    snapshot: Snapshot,
    parts: Holdout,
    ks: Sequence[int],
    rank: int | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[list[EvaluationRow], dict[str, float]]:
    """The GF-CF filter's rows for a snapshot's split, fitted on its training interactions over
    the candidates and judged exactly as :func:`evaluate_holdout` judges; and the settings it
    ran with (``rank`` None: :func:`recsys.evaluation.spectral.filter_rank`'s choice)."""
    train_users, train_items, test_users, test_items = holdout_sets(snapshot, parts)
    n_users, n_items = snapshot.n_users, len(parts.candidates)
    rank = filter_rank(rank, int(parts.trained.sum()), n_items)
    spectral = spectral_filter(train_users, train_items, n_users, n_items, rank, alpha)
    relevant = interaction_matrix(test_users, test_items, n_users, n_items)
    users = np.flatnonzero(np.diff(relevant.indptr))
    items = spectral_top_k(spectral, max(ks), spectral.interactions, users)
    rows = _rows({"spectral": ranking_metrics(items, relevant, ks, users=users)}, ks)
    return rows, {"rank": rank, "alpha": alpha}


def holdout_sets(
    snapshot: Snapshot, parts: Holdout
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train users, train items, test users, test items) of a split, items as positions among
    the candidates."""
    return (
        snapshot.user[parts.train],
        parts.position[snapshot.item[parts.train]],
        snapshot.user[parts.evaluated],
        parts.position[snapshot.item[parts.evaluated]],
    )
