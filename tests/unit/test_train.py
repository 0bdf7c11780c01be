"""Training on planted structure beats popularity; early stopping keeps the best epoch."""

from dataclasses import replace

import numpy as np
import pytest

from recsys.data import split
from recsys.data.graph import interaction_matrix
from recsys.errors import RecsysError
from recsys.evaluation.evaluate import embedding_metrics, evaluate
from recsys.model.settings import TrainConfig
from recsys.model.train import EpochStats, Schedule, _Budget, fit
from tests.fake_clock import SlowingClock


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
    config = TrainConfig(learning_rate=0.1)
    schedule = Schedule(batch_size=8, steps_per_epoch=4, total_steps=40)
    rates = [schedule.rate(config, step) for step in range(40)]
    assert rates[0] == 0.1 and bool(np.all(np.diff(rates) < 0)) and rates[-1] < 0.001


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


def test_a_budget_plans_the_steps_that_fit_at_the_measured_speed() -> None:
    """10 s budget from t=0; step 1 (tracing) ends at 1.0 s, steps 2-4 take 0.2 s each: 95% of
    the budget leaves 9.5 - 1.6 = 7.9 s, 39 more steps, 43 in all (under 100 epochs × 4)."""
    now = [0.0]
    budget = _Budget(10.0, started=0.0, clock=lambda: now[0])
    schedule = Schedule(batch_size=8, steps_per_epoch=4, total_steps=400)
    now[0] = 1.0
    budget.step_done(1)
    now[0] = 1.6
    assert budget.ready_to_plan(4)
    planned = budget.plan(schedule, 4, max_epochs=100)
    assert planned.total_steps == 43 and planned.budget_limited
    # The machine slowed down: at step 20, 9.4 s have passed, so nothing more fits but the
    # cosine's last step, at its end (cut to the 20 steps done, the last would be mid-cosine).
    now[0] = 9.4
    assert budget.replan(planned, 20, max_epochs=100).total_steps == 21
    # A completed schedule is not re-planned, whatever time is left.
    assert budget.replan(replace(planned, total_steps=20), 20, max_epochs=100).total_steps == 20

    def roomy() -> _Budget:
        """A 1000 s budget at step 4, timed as above."""
        budget = _Budget(1000.0, started=0.0, clock=lambda: now[0])
        now[0] = 1.0
        budget.step_done(1)
        now[0] = 1.6
        return budget

    # A generous budget is capped by the epochs asked for, and says it was not the limit.
    capped = roomy().plan(schedule, 4, max_epochs=100)
    assert capped.total_steps == 400 and not capped.budget_limited
    # Without a number of epochs the budget alone decides: 4 + (950 - 1.6) / 0.2 steps, far
    # beyond the 400 of the provisional schedule.
    uncapped = roomy().plan(schedule, 4, max_epochs=None)
    assert 4 + 4741 <= uncapped.total_steps <= 4 + 4742 and uncapped.budget_limited


def test_a_machine_slowing_mid_run_still_ends_its_cosine_within_the_budget() -> None:
    """The rate actually applied at the last step (the model's rate variable as training left
    it) is a sliver of the initial rate, and the fake time spent is within the budget."""
    users, items, n_users, n_items = _planted()
    config = TrainConfig(
        dim=8,
        n_layers=1,
        steps_per_epoch=4,
        max_epochs=100_000,
        max_train_seconds=10.0,
        choose_negatives=False,  # the fake clock moves with the model's steps, not the trials'
    )
    clock = SlowingClock(fast=0.1, slow=0.6)
    result = fit(users, items, n_users, n_items, config, on_step=clock.step, clock=clock)
    assert clock.steps == result.steps == result.schedule.total_steps > 60  # it slowed mid-run
    assert result.schedule.budget_limited and clock.now <= config.max_train_seconds
    applied = float(result.model.learning_rate.numpy())
    assert applied == pytest.approx(result.last_rate, rel=1e-6)
    assert applied < 0.01 * config.learning_rate
