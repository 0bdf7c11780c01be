"""Training on planted structure beats popularity; early stopping keeps the best epoch."""

import numpy as np
import pytest

from recsys import split
from recsys.errors import RecsysError
from recsys.evaluate import embedding_metrics, evaluate
from recsys.graph import interaction_matrix
from recsys.train import EpochStats, cosine_rate, fit
from recsys.train_config import TrainConfig


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Four user communities, each liking its own block of items; one popular item for all."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_groups = 120, 80, 4
    block = n_items // n_groups
    users, items = [], []
    for user in range(n_users):
        group = user % n_groups
        liked = rng.choice(block, 10, replace=False) + group * block
        users += [user] * 11
        items += [*liked.tolist(), 0]
    return np.array(users), np.array(items), n_users, n_items


def test_model_beats_popularity_on_planted_communities() -> None:
    users, items, n_users, n_items = _planted()
    train, test = split.stratified(users, 0.25, 1)
    seen: list[EpochStats] = []
    config = TrainConfig(batch_size=256, learning_rate=0.05, max_epochs=15, seed=1)
    result = fit(users[train], items[train], n_users, n_items, config, seen.append)
    assert [s.epoch for s in seen] == list(range(1, 16)) and result.best_epoch == 15
    assert seen[-1].loss < seen[0].loss and all(s.val_ndcg is None for s in seen)
    rows = evaluate(
        *result.model.embeddings(), users[train], items[train], users[test], items[test]
    )
    ndcg = {r.model: r.value for r in rows if r.metric == "ndcg" and r.k == 10}
    assert ndcg["model"] > ndcg["baseline"] + 0.2


def test_after_epoch_sees_the_model_as_each_epoch_left_it() -> None:
    users, items, n_users, n_items = _planted(2)
    snapshots: list[np.ndarray] = []
    config = TrainConfig(dim=8, n_layers=1, batch_size=256, max_epochs=3, seed=3)
    result = fit(
        users,
        items,
        n_users,
        n_items,
        config,
        after_epoch=lambda m: snapshots.append(m.embeddings()[1]),
    )
    assert len(snapshots) == 3
    assert not np.array_equal(snapshots[0], snapshots[1])  # each epoch trained it further
    np.testing.assert_array_equal(snapshots[-1], result.model.embeddings()[1])


def test_early_stopping_restores_best_epoch() -> None:
    users, items, n_users, n_items = _planted(1)
    config = TrainConfig(
        batch_size=256, learning_rate=0.2, max_epochs=30, val_ratio=0.2, patience=2, seed=2
    )
    result = fit(users, items, n_users, n_items, config)
    scores = [s.val_ndcg for s in result.history]
    assert all(s is not None for s in scores)
    assert result.best_epoch == 1 + int(np.argmax(scores))
    assert len(result.history) == result.best_epoch + config.patience < config.max_epochs
    # The returned weights are the best epoch's: re-score the same validation split.
    fit_idx, val_idx = split.validation(users, np.arange(len(users)), 0.2, np.random.default_rng(2))
    restored = embedding_metrics(
        *result.model.embeddings(),
        interaction_matrix(users[fit_idx], items[fit_idx], n_users, n_items),
        interaction_matrix(users[val_idx], items[val_idx], n_users, n_items),
        (10,),
    )
    assert restored.values[("ndcg", 10)] == max(scores)


def test_cosine_rate_starts_at_rate_and_decays() -> None:
    config = TrainConfig(learning_rate=0.1, max_epochs=10)
    rates = [cosine_rate(config, e) for e in range(1, 11)]
    assert rates[0] == 0.1 and bool(np.all(np.diff(rates) < 0))


def test_a_validation_carve_that_holds_nothing_out_trains_without_validation() -> None:
    """Users with one training interaction each keep it, so there is nothing to validate on."""
    users, items = np.arange(6), np.arange(6) % 3
    config = TrainConfig(dim=4, n_layers=1, max_epochs=3, val_ratio=0.5, patience=1)
    result = fit(users, items, 6, 3, config)
    assert [s.val_ndcg for s in result.history] == [None] * 3
    assert result.best_epoch == 3


def test_nothing_to_sample_and_divergence_are_refused() -> None:
    with pytest.raises(ValueError, match="no negative"):
        fit(np.zeros(3, dtype=int), np.arange(3), 1, 3, TrainConfig(dim=4, max_epochs=1))
    users, items, n_users, n_items = _planted()
    with pytest.raises(RecsysError, match="training diverged at epoch"):
        fit(users, items, n_users, n_items, TrainConfig(learning_rate=1e30, max_epochs=3))
