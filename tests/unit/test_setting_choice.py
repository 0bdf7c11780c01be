"""Settings chosen by trials: a ladder moves outward while an end of it wins, within its bounds,
each trial's schedule is short and complete, and ``fit`` trains the model at the chosen values."""

import math
from dataclasses import replace

import numpy as np
import pytest

from recsys.model import setting_choice
from recsys.model.setting_choice import (
    L2,
    NEGATIVES,
    TRIAL_SHARE,
    Trial,
    choose,
    chosen,
    trial_settings,
)
from recsys.model.settings import TrainConfig
from recsys.model.train import fit

N_USERS = 400
MAX_TRIALS, REFERENCE = L2.max_trials, L2.reference
#: The first candidates in the order tried: the default first.
FIRST_CANDIDATES = (REFERENCE, L2.first[0], L2.first[2])


def _away(value: float, target: float, ladder=L2) -> int:
    """Ladder steps from ``value`` to ``target``."""
    return round(abs(math.log(value / target, ladder.step)))


def _ranking_worse_away_from(target: float, ladder=L2, epochs: float | None = None):
    """A trial whose lists get worse the further its value of the ladder's setting is from
    ``target``: user u's validation item is u, and for a tenth of the users per step away it
    scores below every other item, so validation NDCG@10 is 1 - d / 10 (d steps away)."""
    tried: list[float] = []

    def trial(_users: np.ndarray, _items: np.ndarray, settings: TrainConfig):
        value = getattr(settings, ladder.setting)
        tried.append(value)
        away = _away(value, target, ladder) * N_USERS // 10
        user_rows = np.eye(N_USERS, dtype=np.float32)
        item_rows = np.zeros((2 * N_USERS, N_USERS), np.float32)
        item_rows[:N_USERS] = np.eye(N_USERS) * np.where(np.arange(N_USERS) < away, -1, 1)[:, None]
        return user_rows, item_rows, settings.max_epochs if epochs is None else epochs

    return trial, tried


def _choose(target: float, ladder=L2, epochs: float | None = None) -> tuple[list, list[float]]:
    trial, tried = _ranking_worse_away_from(target, ladder, epochs)
    users = np.arange(N_USERS)
    trials = choose(
        ladder, users, users + N_USERS, users, users, N_USERS, 2 * N_USERS, TrainConfig(), trial
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
    assert chosen(L2, trials) == pytest.approx(closest)  # a lead of 0.1 NDCG on 400 users is clear
    assert [t.ndcg for t in trials] == pytest.approx([1 - _away(l2, target) / 10 for l2 in tried])
    assert {t.users for t in trials} == {N_USERS} and {t.setting for t in trials} == {"l2"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (1, [1, 4]),  # one wins: nothing below one to try
        (4, [1, 4, 16]),  # the top wins: one more, which loses
        (64, [1, 4, 16]),  # up to the ladder's highest, then no further
    ],
)
def test_the_negatives_ladder_stays_within_its_bounds(target: int, expected: list[int]) -> None:
    trials, tried = _choose(target, NEGATIVES)
    assert tried == expected and all(isinstance(value, int) for value in tried)
    assert chosen(NEGATIVES, trials) == min(expected, key=lambda n: _away(n, target, NEGATIVES))
    assert chosen(L2, trials) is None  # no trial of that setting


def test_trials_shorter_than_an_epoch_keep_the_default_after_its_own() -> None:
    """A budget whose trial share trains half an epoch cannot rank the candidates: only the
    default's trial runs, and it is kept even where another value would have won."""
    trials, tried = _choose(1e-2, epochs=0.5)
    assert tried == [REFERENCE] and chosen(L2, trials) == REFERENCE
    trials, tried = _choose(16, NEGATIVES, epochs=0.99)
    assert tried == [1] and chosen(NEGATIVES, trials) == 1
    _, tried = _choose(16, NEGATIVES, epochs=1.0)
    assert tried == [1, 4, 16]


def test_a_lead_inside_the_noise_keeps_the_default() -> None:
    """0.02 NDCG ahead on 400 users is inside twice the standard error (about 0.07 here); 0.1
    ahead is not; without trials there is nothing to choose."""
    reference = Trial("l2", REFERENCE, 0.50, 400, 1, 1.0)
    assert chosen(L2, [reference, Trial("l2", 1e-2, 0.52, 400, 1, 1.0)]) == REFERENCE
    assert chosen(L2, [reference, Trial("l2", 1e-2, 0.60, 400, 1, 1.0)]) == 1e-2
    assert chosen(L2, [Trial("l2", 1e-2, 0.6, 400, 1, 1.0), reference]) == 1e-2
    assert chosen(L2, []) is None
    one = Trial("negative_candidates", 1, 0.50, 400, 1, 1.0)
    assert chosen(NEGATIVES, [one, Trial("negative_candidates", 4, 0.53, 400, 1, 1.0)]) == 1


def test_a_trial_scores_at_most_scored_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 7 of the 400 users scored, a weight one half-decade off scores a multiple of 1/7
    (as many of the 7 as it ranks first), never the 0.9 of all 400."""
    monkeypatch.setattr(setting_choice, "SCORED_USERS", 7)
    trials, _ = _choose(1e-3)
    assert {t.users for t in trials} == {7} and trials[0].ndcg == 1.0  # the default, exact
    for trial in trials[1:]:
        assert trial.ndcg * 7 == pytest.approx(round(trial.ndcg * 7))


def test_a_trial_trains_a_short_complete_schedule_without_its_own_choice_or_carve() -> None:
    config = TrainConfig(choose_l2=True, val_ratio=0.1, max_epochs=40, max_train_seconds=600)
    settings = trial_settings(config)
    assert (settings.max_epochs, settings.max_train_seconds) == (10, 600 * TRIAL_SHARE)
    assert not settings.choose_l2 and not settings.choose_negatives and settings.val_ratio == 0
    assert (
        trial_settings(replace(config, max_epochs=None, max_train_seconds=None)).max_epochs is None
    )


def _communities() -> tuple[np.ndarray, np.ndarray]:
    """Four planted communities of 20 users and 15 items."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(80), 8)
    return users, (users % 4) * 15 + rng.integers(0, 15, len(users))


def test_fit_trains_the_model_at_the_best_trials_values() -> None:
    """The negatives are chosen first, then the weight at the chosen negatives; the model is
    the one a run given those values trains."""
    users, items = _communities()
    config = TrainConfig(dim=8, n_layers=2, max_epochs=8, choose_l2=True, seed=4)
    assert config.choose_negatives  # the default
    result = fit(users, items, 80, 60, config)
    settings = [t.setting for t in result.trials]
    first_l2 = settings.index("l2")
    assert set(settings[:first_l2]) == {"negative_candidates"} and first_l2 >= 2
    assert set(settings[first_l2:]) == {"l2"} and len(settings) - first_l2 >= 3
    assert {t.epochs for t in result.trials} == {2}
    values = result.chosen
    assert values == {
        "negative_candidates": chosen(NEGATIVES, result.trials),
        "l2": chosen(L2, result.trials),
    }
    given = replace(config, choose_l2=False, choose_negatives=False, **values)
    direct = fit(users, items, 80, 60, given)
    assert direct.trials == () and direct.chosen == {} and len(result.history) == 8
    for a, b in zip(result.model.embeddings(), direct.model.embeddings(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_more_negative_candidates_train_another_model() -> None:
    """Four candidates per triple change what the steps learn from the same seed and data."""
    users, items = _communities()
    plain = TrainConfig(dim=8, n_layers=2, max_epochs=3, choose_negatives=False)
    one = fit(users, items, 80, 60, plain).model.embeddings()[1]
    four = fit(users, items, 80, 60, replace(plain, negative_candidates=4)).model.embeddings()[1]
    assert not np.array_equal(one, four)


def test_a_refit_trains_at_the_chosen_values_without_choosing_again() -> None:
    config = TrainConfig(choose_l2=True, val_ratio=0.1)
    refit = config.for_refit(7, {"l2": 10**-2.5, "negative_candidates": 4})
    assert (refit.l2, refit.negative_candidates, refit.max_epochs) == (10**-2.5, 4, 7)
    assert not refit.choose_l2 and not refit.choose_negatives
    assert TrainConfig(l2=0.01).for_refit(7) == TrainConfig(l2=0.01)


def test_the_run_says_whether_it_chose_or_kept_the_default() -> None:
    """``run`` prints each choice with the trials' figures, or why it kept the default."""
    from recsys.model.train import Schedule, TrainResult
    from recsys.run_summary import choice_lines

    def result(*trials: Trial) -> TrainResult:
        return TrainResult(None, [], 1, Schedule(1, 1, 1), 1, 0.0, trials=trials)  # type: ignore[arg-type]

    short = result(Trial("negative_candidates", 1, 0.01, 50, 0.25, 3.0))
    assert choice_lines(short, 10) == [
        "negatives auto: kept 1: a trial's share of the budget trained 0.25 epochs, too few to "
        "compare candidates (3.0 s)"
    ]
    both = result(
        Trial("negative_candidates", 1, 0.30, 400, 2, 1.0),
        Trial("negative_candidates", 4, 0.50, 400, 2, 1.5),
    )
    assert choice_lines(both, 10) == [
        "negatives auto: chose 4 by validation ndcg@10 (1: 0.3000, 4: 0.5000; 2.5 s of trials)"
    ]
