"""The L2 weight chosen by trials: the ladder moves outward while an end of it wins, each
trial's schedule is short and complete, and ``fit`` trains the model at the best weight."""

import math
from dataclasses import replace

import numpy as np
import pytest

from recsys.model import l2_choice
from recsys.model.l2_choice import (
    FIRST_CANDIDATES,
    MAX_TRIALS,
    REFERENCE,
    TRIAL_SHARE,
    L2Trial,
    best_l2,
    choose_l2,
    trial_settings,
)
from recsys.model.settings import TrainConfig
from recsys.model.train import fit

N_USERS = 400


def _away(l2: float, target: float) -> int:
    """Half-decades from ``l2`` to ``target``."""
    return round(abs(math.log10(l2) - math.log10(target)) * 2)


def _ranking_worse_away_from(target: float):
    """A trial whose lists get worse the further its weight is from ``target``: user u's
    validation item is u, and for a tenth of the users per half-decade away it scores below
    every other item, so validation NDCG@10 is 1 - d / 10 (d half-decades away)."""
    tried: list[float] = []

    def trial(_users: np.ndarray, _items: np.ndarray, settings: TrainConfig):
        tried.append(settings.l2)
        away = _away(settings.l2, target) * N_USERS // 10
        user_rows = np.eye(N_USERS, dtype=np.float32)
        item_rows = np.zeros((2 * N_USERS, N_USERS), np.float32)
        item_rows[:N_USERS] = np.eye(N_USERS) * np.where(np.arange(N_USERS) < away, -1, 1)[:, None]
        return user_rows, item_rows, settings.max_epochs

    return trial, tried


def _choose(target: float) -> tuple[list, list[float]]:
    trial, tried = _ranking_worse_away_from(target)
    users = np.arange(N_USERS)
    trials = choose_l2(
        users, users + N_USERS, users, users, N_USERS, 2 * N_USERS, TrainConfig(), trial
    )
    return trials, tried


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (1e-3, [*FIRST_CANDIDATES]),  # the middle wins: no more trials
        (1e-2, [*FIRST_CANDIDATES, 1e-2, 10**-1.5]),  # up while the top wins, then down again
        (1e-6, [*FIRST_CANDIDATES, 1e-4, 10**-4.5]),  # down, stopped at MAX_TRIALS
    ],
)
def test_the_ladder_moves_outward_while_an_end_wins(target: float, expected: list[float]) -> None:
    trials, tried = _choose(target)
    assert tried == pytest.approx(expected) and len(tried) <= MAX_TRIALS
    closest = min(expected, key=lambda l2: _away(l2, target))
    assert best_l2(trials) == pytest.approx(closest)  # a lead of 0.1 NDCG on 400 users is clear
    assert [t.ndcg for t in trials] == pytest.approx([1 - _away(l2, target) / 10 for l2 in tried])
    assert {t.users for t in trials} == {N_USERS}


def test_a_lead_inside_the_noise_keeps_the_default_weight() -> None:
    """0.02 NDCG ahead on 400 users is inside twice the standard error (about 0.07 here); 0.1
    ahead is not; without trials there is nothing to choose."""
    reference = L2Trial(REFERENCE, 0.50, 400, 1, 1.0)
    assert best_l2([reference, L2Trial(1e-2, 0.52, 400, 1, 1.0)]) == REFERENCE
    assert best_l2([reference, L2Trial(1e-2, 0.60, 400, 1, 1.0)]) == 1e-2
    assert best_l2([L2Trial(1e-2, 0.6, 400, 1, 1.0), reference]) == 1e-2
    assert best_l2([]) is None


def test_a_trial_scores_at_most_scored_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 7 of the 400 users scored, a weight one half-decade off scores a multiple of 1/7
    (as many of the 7 as it ranks first), never the 0.9 of all 400."""
    monkeypatch.setattr(l2_choice, "SCORED_USERS", 7)
    trials, _ = _choose(1e-3)
    assert {t.users for t in trials} == {7} and trials[1].ndcg == 1.0
    for trial in (trials[0], trials[2]):
        assert trial.ndcg * 7 == pytest.approx(round(trial.ndcg * 7))


def test_a_trial_trains_a_short_complete_schedule_without_its_own_choice_or_carve() -> None:
    config = TrainConfig(choose_l2=True, val_ratio=0.1, max_epochs=40, max_train_seconds=600)
    settings = trial_settings(config)
    assert (settings.max_epochs, settings.max_train_seconds) == (10, 600 * TRIAL_SHARE)
    assert not settings.choose_l2 and settings.val_ratio == 0
    assert (
        trial_settings(replace(config, max_epochs=None, max_train_seconds=None)).max_epochs is None
    )


def test_fit_trains_the_model_at_the_best_trials_weight() -> None:
    """Four planted communities; the chosen model is the one a run at that weight trains."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(80), 8)
    items = (users % 4) * 15 + rng.integers(0, 15, len(users))
    config = TrainConfig(dim=8, n_layers=2, max_epochs=8, choose_l2=True, seed=4)
    chosen = fit(users, items, 80, 60, config)
    assert len(chosen.l2_trials) >= len(FIRST_CANDIDATES)
    assert {t.epochs for t in chosen.l2_trials} == {2}
    best = best_l2(chosen.l2_trials)
    assert best is not None and chosen.chosen_l2 == best
    direct = fit(users, items, 80, 60, replace(config, choose_l2=False, l2=best))
    assert direct.l2_trials == () and len(chosen.history) == 8
    for a, b in zip(chosen.model.embeddings(), direct.model.embeddings(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_refit_trains_at_the_chosen_weight_without_choosing_again() -> None:
    refit = TrainConfig(choose_l2=True, val_ratio=0.1).for_refit(7, 10**-2.5)
    assert (refit.l2, refit.choose_l2, refit.max_epochs) == (10**-2.5, False, 7)
    assert TrainConfig(l2=0.01).for_refit(7) == TrainConfig(l2=0.01)
