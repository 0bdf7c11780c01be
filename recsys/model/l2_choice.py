"""The L2 weight chosen from the run's own data: short validation trials before training.

Why: no single weight serves all data. On ML-100K 1e-3 ends 40 epochs at NDCG@10 0.471 against
0.421 for 3e-4 and 0.375 for 1e-4; on a public 1M-interaction check-in graph (issue 20) 1e-4
beat 1e-3 in the same 10 minutes; on the Amazon-Book sample 3e-4 and 1e-3 tie at 100 epochs
(docs/quality.md has the commands).

How: each candidate trains a complete, short cosine schedule (a quarter of the run's epochs, or
``TRIAL_SHARE`` of its time budget) on the training interactions less a per-user validation
share, all from the same start, and is scored by NDCG@eval_k on that share. A complete schedule,
not the first epochs of a long one: early in a long schedule a weak penalty is ahead (1e-4 peaks
on ML-100K by epoch 6, then falls far behind), while complete 10-epoch schedules ranked the
weights on ML-100K as complete 40-epoch ones do at the top (1e-3 first on all three seeds).
The candidates are half-decades, 3e-4, 1e-3 and 3e-3 first, then outward one at a time while an
end of the ladder wins, at most ``MAX_TRIALS`` in all.

The default weight (``REFERENCE``) is kept unless the best trial beats it by more than twice the
standard error of the difference: on the Amazon-Book sample the trials put 3.16e-3 ahead of 1e-3
by 0.0002 NDCG@10 (0.0146 against 0.0144 on 10,000 users, well inside the noise), and a
10-minute run at 3.16e-3 ended at NDCG@20 0.0369 where 1e-3 reaches 0.0459. Short schedules can
rank weights otherwise than the long one that follows: only a clear lead moves the weight.

Public API:
    L2Trial(l2, ndcg, users, epochs, seconds)   a candidate, its validation NDCG@eval_k on users
    REFERENCE, FIRST_CANDIDATES, MAX_TRIALS, TRIAL_SHARE, VALIDATION_RATIO, SCORED_USERS
    trial_settings(config) -> TrainConfig    a trial's short schedule (no choice, no carve)
    best_l2(trials) -> float | None   the chosen weight: the best trial's where it clearly beats
        the reference's, else the reference (None without trials)
    choose_l2(fit_users, fit_items, val_users, val_items, n_users, n_items, config, trial,
              clock=time.perf_counter) -> list[L2Trial]
        the trials in the order run
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recsys.data.graph import interaction_matrix
from recsys.evaluation.evaluate import embedding_metrics
from recsys.model.settings import TrainConfig

#: The default weight (TrainConfig's), kept unless another clearly beats it.
REFERENCE = TrainConfig().l2
_STEP = math.sqrt(10.0)
#: The ladder starts around the default weight and moves by half-decades (×√10).
FIRST_CANDIDATES = (REFERENCE / _STEP, REFERENCE, REFERENCE * _STEP)
MAX_TRIALS = 5
#: Share of the time budget each trial trains for; with no budget a trial trains a quarter of
#: the run's epochs.
TRIAL_SHARE = 0.05
#: Share of each user's training interactions the trials are scored on (when the run itself
#: validates, its own ratio).
VALIDATION_RATIO = 0.1
#: Users whose validation lists a trial scores, drawn from the seed: scoring every user costs
#: minutes a trial at a million users, and the mean NDCG of 10,000 has a standard error near
#: 0.002, well under the gaps between candidates measured.
SCORED_USERS = 10_000

#: Trains one candidate: (users, items, settings) -> (user rows, item rows, epochs trained).
Trial = Callable[[np.ndarray, np.ndarray, TrainConfig], tuple[np.ndarray, np.ndarray, int]]


@dataclass(frozen=True)
class L2Trial:
    """One candidate weight, its validation NDCG@eval_k over ``users`` users, the epochs and
    seconds it trained."""

    l2: float
    ndcg: float
    users: int
    epochs: int
    seconds: float


def trial_settings(config: TrainConfig) -> TrainConfig:
    """A trial's settings: the run's, with a short complete schedule, no choice of its own and
    no validation carve (the trials share one, made before them)."""
    epochs = None if config.max_epochs is None else max(1, math.ceil(config.max_epochs / 4))
    seconds = None if config.max_train_seconds is None else config.max_train_seconds * TRIAL_SHARE
    return replace(
        config, choose_l2=False, val_ratio=0.0, max_epochs=epochs, max_train_seconds=seconds
    )


def best_l2(trials: Sequence[L2Trial]) -> float | None:
    """The best trial's weight where its lead over the reference's trial exceeds twice the
    standard error of the difference (a user's NDCG lies in [0, 1], so its variance is at most
    m(1 - m) for a mean m), else the reference's; None without trials."""
    if not trials:
        return None
    best = max(trials, key=lambda t: t.ndcg)
    reference = next((t for t in trials if math.isclose(t.l2, REFERENCE)), None)
    if reference is None or best is reference:
        return best.l2
    variance = best.ndcg * (1 - best.ndcg) + reference.ndcg * (1 - reference.ndcg)
    error = math.sqrt(variance / max(1, min(best.users, reference.users)))
    return best.l2 if best.ndcg - reference.ndcg > 2 * error else reference.l2


def choose_l2(
    fit_users: np.ndarray,
    fit_items: np.ndarray,
    val_users: np.ndarray,
    val_items: np.ndarray,
    n_users: int,
    n_items: int,
    config: TrainConfig,
    trial: Trial,
    clock: Callable[[], float] = time.perf_counter,
) -> list[L2Trial]:
    """Train the ladder's candidates with ``trial`` on the fit interactions and score each on
    the validation ones (the fit ones excluded from its lists), moving outward while an end
    of the ladder wins. At most ``SCORED_USERS`` users' lists are scored."""
    scored = np.unique(val_users)
    if len(scored) > SCORED_USERS:
        scored = np.random.default_rng(config.seed).choice(scored, SCORED_USERS, replace=False)
        kept = np.isin(val_users, scored)
        val_users, val_items = val_users[kept], val_items[kept]
    exclude = interaction_matrix(fit_users, fit_items, n_users, n_items)
    relevant = interaction_matrix(val_users, val_items, n_users, n_items)
    settings = trial_settings(config)
    trials: list[L2Trial] = []

    def run(l2: float) -> None:
        started = clock()
        users, items, epochs = trial(fit_users, fit_items, replace(settings, l2=l2))
        metrics = embedding_metrics(users, items, exclude, relevant, (config.eval_k,))
        ndcg = metrics.values[("ndcg", config.eval_k)]
        trials.append(L2Trial(l2, ndcg, metrics.n_users, epochs, clock() - started))

    for l2 in FIRST_CANDIDATES:
        run(l2)
    while len(trials) < MAX_TRIALS:
        ladder = sorted(t.l2 for t in trials)
        best = max(trials, key=lambda t: t.ndcg).l2
        if best == ladder[0]:
            run(ladder[0] / _STEP)
        elif best == ladder[-1]:
            run(ladder[-1] * _STEP)
        else:
            break
    return trials
