"""Settings chosen from the run's own data: short validation trials before training.

Why: no single value serves all data.
- The L2 weight: on ML-100K 1e-3 ends 40 epochs at NDCG@10 0.471 against 0.421 for 3e-4 and
  0.375 for 1e-4; on a public 1M-interaction check-in graph (issue 20) 1e-4 beat 1e-3 in the
  same 10 minutes; on the Amazon-Book sample 3e-4 and 1e-3 tie at 100 epochs.
- The negative candidates (the step trains against the best-scored of that many uniform draws):
  on the Amazon-Book sample (0.01 % dense) 4 candidates end 60 epochs at NDCG@20 0.0502 against
  0.0408 for one; on ML-100K (6 % dense, where a user's unrated films are often ones they would
  like) they end 40 epochs at NDCG@10 0.433 against 0.471. docs/quality.md has the commands.

How: each candidate trains a complete, short cosine schedule (a quarter of the run's epochs, or
``TRIAL_SHARE`` of its time budget) on the training interactions less a per-user validation
share, all from the same start, and is scored by NDCG@eval_k on that share. A complete schedule,
not the first epochs of a long one: early in a long schedule a weak penalty is ahead (1e-4 peaks
on ML-100K by epoch 6, then falls far behind), while complete 10-epoch schedules ranked the
weights on ML-100K as complete 40-epoch ones do at the top (1e-3 first on all three seeds).
Each setting has a :class:`Ladder`: first candidates around its default, then outward one step
at a time while an end of the ladder wins, within its bounds and trial count. Settings are
chosen one after the other, each trial at the values chosen before it. Where a trial's share of
the budget trains under ``MIN_TRIAL_EPOCHS`` (a short budget on a large graph: at 20M
interactions an epoch takes about 40 s), the trials could not tell the candidates apart and would
only take time from training: after the default's trial, which runs first, the rest are skipped
and the default is kept.

The default (the ladder's ``reference``) is kept unless the best trial beats it by more than
twice the standard error of the difference: on the Amazon-Book sample the trials put an L2 of
3.16e-3 ahead of 1e-3 by 0.0002 NDCG@10 (0.0146 against 0.0144 on 10,000 users, well inside the
noise), and a 10-minute run at 3.16e-3 ended at NDCG@20 0.0369 where 1e-3 reaches 0.0459. Short
schedules can rank values otherwise than the long run that follows: only a clear lead moves one.

Public API:
    Ladder(setting, option, reference, first, step, lowest, highest, max_trials, flag)
                                          a setting's candidates
    L2, NEGATIVES, LADDERS                the ladders of TrainConfig.l2 and .negative_candidates,
                                          and both in the order chosen
    Trial(setting, value, ndcg, users, epochs, seconds)   a candidate and its validation NDCG
    TRIAL_SHARE, MIN_TRIAL_EPOCHS, VALIDATION_RATIO, SCORED_USERS
    ladders(config) -> list[Ladder]       the ladders ``config`` asks to choose
    trial_settings(config) -> TrainConfig a trial's short schedule (no choice, no carve)
    chosen(ladder, trials) -> float | None   the ladder's value: the best trial's where it clearly
        beats the reference's, else the reference (None without trials of that setting)
    choose(ladder, fit_users, fit_items, val_users, val_items, n_users, n_items, config, trial,
           clock=time.perf_counter, on_trial=None) -> list[Trial]   the ladder's trials, in the
        order run, each passed to ``on_trial`` as it ends
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recsys.data.graph import interaction_matrix
from recsys.evaluation.evaluate import embedding_metrics
from recsys.model.settings import TrainConfig


@dataclass(frozen=True)
class Ladder:
    """The candidates of the TrainConfig field ``setting``: ``first``, then outward by ×``step``
    from the end that wins while it stays within [lowest, highest], at most ``max_trials``;
    ``reference`` (the default) is kept unless another clearly beats it."""

    setting: str
    #: The ``run`` option that sets it, as ``run`` and ``show`` name the choice.
    option: str
    reference: float
    first: tuple[float, ...]
    step: float
    lowest: float
    highest: float
    max_trials: int
    #: The TrainConfig flag that asks for the choice.
    flag: str


_HALF_DECADE = math.sqrt(10.0)
_DEFAULTS = TrainConfig()
#: L2: half-decades around the default weight.
L2 = Ladder(
    "l2",
    "l2",
    _DEFAULTS.l2,
    (_DEFAULTS.l2 / _HALF_DECADE, _DEFAULTS.l2, _DEFAULTS.l2 * _HALF_DECADE),
    _HALF_DECADE,
    0.0,
    math.inf,
    5,
    "choose_l2",
)
#: Negative candidates: one (plain BPR) against four, then ×4 while the most wins.
NEGATIVES = Ladder("negative_candidates", "negatives", 1, (1, 4), 4, 1, 16, 3, "choose_negatives")
#: Every ladder, in the order its setting is chosen: the negatives first, since they change what
#: a step learns more than the weight does.
LADDERS = (NEGATIVES, L2)

#: Share of the time budget each trial trains for; with no budget a trial trains a quarter of
#: the run's epochs.
TRIAL_SHARE = 0.05
#: Epochs a trial must train for the trials to go on (see above).
MIN_TRIAL_EPOCHS = 1.0
#: Share of each user's training interactions the trials are scored on (when the run itself
#: validates, its own ratio).
VALIDATION_RATIO = 0.1
#: Users whose validation lists a trial scores, drawn from the seed: scoring every user costs
#: minutes a trial at a million users, and the mean NDCG of 10,000 has a standard error near
#: 0.002, well under the gaps between candidates measured.
SCORED_USERS = 10_000

#: Trains one candidate: (users, items, settings) -> (user rows, item rows, epochs trained, a
#: fraction where the budget ended the schedule inside its first epoch).
TrialFit = Callable[[np.ndarray, np.ndarray, TrainConfig], tuple[np.ndarray, np.ndarray, float]]


@dataclass(frozen=True)
class Trial:
    """One candidate value of ``setting``, its validation NDCG@eval_k over ``users`` users, the
    epochs and seconds it trained."""

    setting: str
    value: float
    ndcg: float
    users: int
    epochs: float
    seconds: float


def ladders(config: TrainConfig) -> list[Ladder]:
    """The ladders whose setting ``config`` asks to choose, in the order they are chosen."""
    return [ladder for ladder in LADDERS if getattr(config, ladder.flag)]


def trial_settings(config: TrainConfig) -> TrainConfig:
    """A trial's settings: the run's, with a short complete schedule, no choice of its own and
    no validation carve (the trials share one, made before them)."""
    epochs = None if config.max_epochs is None else max(1, math.ceil(config.max_epochs / 4))
    seconds = None if config.max_train_seconds is None else config.max_train_seconds * TRIAL_SHARE
    return replace(config.given(), val_ratio=0.0, max_epochs=epochs, max_train_seconds=seconds)


def chosen(ladder: Ladder, trials: Sequence[Trial]) -> float | None:
    """The best trial's value where its lead over the reference's trial exceeds twice the
    standard error of the difference (a user's NDCG lies in [0, 1], so its variance is at most
    m(1 - m) for a mean m), else the reference's; None without trials of the ladder's setting."""
    trials = [t for t in trials if t.setting == ladder.setting]
    if not trials:
        return None
    best = max(trials, key=lambda t: t.ndcg)
    reference = next((t for t in trials if math.isclose(t.value, ladder.reference)), None)
    if reference is None or best is reference:
        return best.value
    variance = best.ndcg * (1 - best.ndcg) + reference.ndcg * (1 - reference.ndcg)
    error = math.sqrt(variance / max(1, min(best.users, reference.users)))
    return best.value if best.ndcg - reference.ndcg > 2 * error else reference.value


def choose(
    ladder: Ladder,
    fit_users: np.ndarray,
    fit_items: np.ndarray,
    val_users: np.ndarray,
    val_items: np.ndarray,
    n_users: int,
    n_items: int,
    config: TrainConfig,
    trial: TrialFit,
    clock: Callable[[], float] = time.perf_counter,
    on_trial: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Train the ladder's candidates with ``trial`` on the fit interactions and score each on
    the validation ones (the fit ones excluded from its lists), the reference first, moving
    outward while an end of the ladder wins; only the reference where its trial trained under
    ``MIN_TRIAL_EPOCHS``. At most ``SCORED_USERS`` users' lists are scored."""
    scored = np.unique(val_users)
    if len(scored) > SCORED_USERS:
        scored = np.random.default_rng(config.seed).choice(scored, SCORED_USERS, replace=False)
        kept = np.isin(val_users, scored)
        val_users, val_items = val_users[kept], val_items[kept]
    exclude = interaction_matrix(fit_users, fit_items, n_users, n_items)
    relevant = interaction_matrix(val_users, val_items, n_users, n_items)
    settings = trial_settings(config)
    kind = type(getattr(config, ladder.setting))
    trials: list[Trial] = []

    def run(value: float) -> None:
        started = clock()
        tried = replace(settings, **{ladder.setting: kind(value)})
        users, items, epochs = trial(fit_users, fit_items, tried)
        metrics = embedding_metrics(users, items, exclude, relevant, (config.eval_k,))
        ndcg = metrics.values[("ndcg", config.eval_k)]
        seconds = clock() - started
        trials.append(Trial(ladder.setting, kind(value), ndcg, metrics.n_users, epochs, seconds))
        if on_trial is not None:
            on_trial(trials[-1])

    run(ladder.reference)
    if trials[0].epochs < MIN_TRIAL_EPOCHS:
        return trials
    for value in ladder.first:
        if not math.isclose(value, ladder.reference):
            run(value)
    while len(trials) < ladder.max_trials:
        values = sorted(t.value for t in trials)
        best = max(trials, key=lambda t: t.ndcg).value
        if best == values[0] and values[0] / ladder.step >= ladder.lowest:
            run(values[0] / ladder.step)
        elif best == values[-1] and values[-1] * ladder.step <= ladder.highest:
            run(values[-1] * ladder.step)
        else:
            break
    return trials
