"""Training loop: BPR steps under a cosine learning-rate schedule, optional early stopping and
time budget.

Public API:
    TrainConfig           (from recsys.model.settings) the settings; defaults are tuned (below)
    EpochStats(epoch, loss, val_ndcg, learning_rate, seconds)
    Schedule(batch_size, steps_per_epoch, total_steps, budget_limited)  .rate(config, step)
    TrainResult(model, history, best_epoch, schedule, steps, last_rate, start, start_seconds,
                trials)  .chosen -> {setting: value} the trials chose
    fit(users, items, n_users, n_items, config=TrainConfig(), on_epoch=None, on_step=None,
        *, after_epoch=None, initial=None, clock=time.perf_counter, on_trial=None) -> TrainResult

Why a fixed number of steps per epoch: a step propagates the whole graph, and costs about the
same at any batch size, so an epoch of interactions ÷ a fixed batch costs time that grows with
the square of the data. With the batch growing with the data instead, an epoch costs
``steps_per_epoch`` propagations and grows linearly (bench/train_speed.py measures it).

A time budget (``max_train_seconds``) sizes the schedule itself: after a few steps the loop
measures their speed and plans as many steps as fit (at most ``max_epochs`` epochs, when given),
and the
cosine decays to 0 over those. Each epoch's end re-measures the speed since the last plan and
re-plans, so a machine that slows down shortens the remaining schedule rather than overrunning
the budget; a re-plan always leaves at least one step, the cosine's last. ``clock`` is what the
budget reads (a test passes fake time).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from recsys.data import split
from recsys.data.graph import interaction_matrix, normalized_interactions
from recsys.data.sampler import BprSampler
from recsys.errors import RecsysError
from recsys.evaluation.evaluate import embedding_metrics
from recsys.model import setting_choice
from recsys.model.lightgcn import LightGCN
from recsys.model.setting_choice import VALIDATION_RATIO, Trial
from recsys.model.settings import TrainConfig
from recsys.model.spectral_start import spectral_start
from recsys.model.warm_start import InitialState

#: Steps timed (after the first, which traces the graph) before a budget is planned.
_WARMUP_STEPS = 3
#: Share of the budget planned for: the rest absorbs noise and the final propagation.
_BUDGET_SHARE = 0.95


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation NDCG@eval_k (None without validation)."""

    epoch: int
    loss: float
    val_ndcg: float | None
    learning_rate: float
    seconds: float


@dataclass(frozen=True)
class Schedule:
    """What training is planned to do: ``total_steps`` steps of ``batch_size`` triples."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    budget_limited: bool = False

    def rate(self, config: TrainConfig, step: int) -> float:
        """Learning rate of 0-based ``step``: the initial rate, decaying to 0 by a half cosine."""
        progress = min(step / self.total_steps, 1.0)
        return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    """The trained model (at its best epoch's weights), per-epoch history, best epoch, the
    schedule that training followed (as re-planned under a budget), the steps it took, where
    its layer-0 rows started (``warm``, ``spectral`` or ``cold``), the seconds that start's
    SVD took (inside the time budget) and, where the run chose settings from the data, the
    trials (the model's values are the best of them)."""

    model: LightGCN
    history: list[EpochStats]
    best_epoch: int
    schedule: Schedule
    steps: int
    #: The learning rate applied at the last step.
    last_rate: float
    start: str = "cold"
    start_seconds: float = 0.0
    trials: tuple[Trial, ...] = ()

    @property
    def chosen(self) -> dict[str, float]:
        """The TrainConfig fields the trials chose and their values (empty where none was)."""
        values = {
            ladder.setting: setting_choice.chosen(ladder, self.trials)
            for ladder in setting_choice.LADDERS
        }
        return {setting: value for setting, value in values.items() if value is not None}


StepProgress = Callable[[int, int], None]


def fit(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen, safe to share
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_step: StepProgress | None = None,
    *,
    after_epoch: Callable[[LightGCN], None] | None = None,
    initial: InitialState | None = None,
    clock: Callable[[], float] = time.perf_counter,
    on_trial: Callable[[Trial], None] | None = None,
) -> TrainResult:
    """Train LightGCN on the given training interactions (contiguous indices).

    With ``val_ratio > 0`` a per-user validation set is carved out of them, the model
    trains on the rest, and training stops after ``patience`` epochs without a better
    validation NDCG@eval_k; the best epoch's weights are restored. Otherwise (or when the
    carve holds nothing out: every user has a single training interaction) all of them train
    for the whole schedule and the last epoch is the result. ``on_step(done, total)`` is
    called after every step with the steps done and planned in the current epoch;
    ``after_epoch`` sees the model after every epoch, so a benchmark can score it per epoch
    (``bench/quality.py --curve``) without a training loop of its own. ``initial`` warm-starts
    the layer-0 rows of the users and items an earlier version learnt (recsys/model/warm_start.py).

    With ``choose_negatives`` or ``choose_l2`` those settings are chosen first by short trials
    (recsys/model/setting_choice.py) inside the same budget, each trial passed to ``on_trial``
    as it ends.

    Raises ValueError when no user has an item outside their training items (BPR has no
    negative to sample), and RecsysError when the loss stops being finite.
    """
    if setting_choice.ladders(config):
        callbacks = _Callbacks(on_epoch, on_step, after_epoch, on_trial)
        return _fit_choosing(users, items, n_users, n_items, config, callbacks, initial, clock)
    started = clock()
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    fit_users, fit_items = users, items
    validating = False
    if config.val_ratio > 0:
        fit_idx, val_idx = split.validation(users, np.arange(len(users)), config.val_ratio, rng)
        validating = len(val_idx) > 0
        fit_users, fit_items = users[fit_idx], items[fit_idx]
        exclude = interaction_matrix(fit_users, fit_items, n_users, n_items)
        relevant = interaction_matrix(users[val_idx], items[val_idx], n_users, n_items)
    sampler = BprSampler(fit_users, fit_items, n_items, rng)
    if sampler.n_samples == 0:
        raise ValueError("nothing to train on: every user has every item, so no negative exists")
    graph = normalized_interactions(fit_users, fit_items, n_users, n_items)
    start = _start(graph, config, initial, clock)
    model = LightGCN.from_config(graph, config, start.initial)
    batch_size, steps_per_epoch = config.batching(sampler.n_samples)
    # Without a number of epochs the budget sizes the schedule once the first steps are timed;
    # until then it is provisionally the default's.
    epochs = config.max_epochs or TrainConfig().max_epochs
    schedule = Schedule(batch_size, steps_per_epoch, epochs * steps_per_epoch)
    budget = _Budget(config.max_train_seconds, started, clock)

    history: list[EpochStats] = []
    best_epoch, best_score, best_weights = 0, -math.inf, None
    step, epoch = 0, 0
    while step < schedule.total_steps:
        epoch += 1
        epoch_started = clock()
        rate = schedule.rate(config, step)
        losses = []
        epoch_start = step
        epoch_end = min(step + steps_per_epoch, schedule.total_steps)
        while step < epoch_end:
            last_rate = schedule.rate(config, step)
            model.learning_rate.assign(last_rate)
            losses.append(
                model.train_step(*sampler.batch(batch_size, config.negative_candidates))[0]
            )
            step += 1
            if on_step is not None:
                on_step(step - epoch_start, epoch_end - epoch_start)
            budget.step_done(step)
            if budget.ready_to_plan(step):
                schedule = budget.plan(schedule, step, config.max_epochs)
                epoch_end = min(epoch_end, schedule.total_steps)
        loss = float(np.mean([float(x) for x in losses]))
        if not math.isfinite(loss):
            raise RecsysError(
                f"training diverged at epoch {epoch}: the loss is {loss}; try a lower learning "
                f"rate (this epoch's started at {rate:g}) or L2 weight ({config.l2:g})"
            )
        val_ndcg = None
        if validating:
            metrics = embedding_metrics(*model.embeddings(), exclude, relevant, (config.eval_k,))
            val_ndcg = metrics.values[("ndcg", config.eval_k)]
        stats = EpochStats(epoch, loss, val_ndcg, rate, clock() - epoch_started)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if after_epoch is not None:
            after_epoch(model)
        if val_ndcg is None:
            best_epoch = epoch
        elif val_ndcg > best_score:
            best_epoch, best_score, best_weights = epoch, val_ndcg, model.get_weights()
        elif epoch - best_epoch >= config.patience:
            break
        schedule = budget.replan(schedule, step, config.max_epochs)
    if best_weights is not None:
        model.set_weights(best_weights)
    return TrainResult(
        model, history, best_epoch, schedule, step, last_rate, start.kind, start.seconds
    )


def _fit_choosing(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    config: TrainConfig,
    callbacks: "_Callbacks",
    initial: InitialState | None,
    clock: Callable[[], float],
) -> TrainResult:
    """Trials on the training interactions less a validation share, all from one start (a warm
    start's rows, else the fit graph's spectrum, else the seed's noise), one setting after the
    other, then the model at the chosen values on all of them in what remains of the budget. A
    carve that holds nothing out (every user has one interaction) leaves the settings as given."""
    started = clock()
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    ratio = config.val_ratio or VALIDATION_RATIO
    fit_idx, val_idx = split.validation(users, np.arange(len(users)), ratio, config.seed)
    trials: list[Trial] = []
    final = config.given()
    if len(val_idx):
        shared = initial
        if shared is None and config.spectral_start:
            graph = normalized_interactions(users[fit_idx], items[fit_idx], n_users, n_items)
            shared = spectral_start(graph, config.dim, config.seed)

        def trial(
            fit_users: np.ndarray, fit_items: np.ndarray, settings: TrainConfig
        ) -> tuple[np.ndarray, np.ndarray, float]:
            cold = replace(settings, spectral_start=False)
            trained = fit(fit_users, fit_items, n_users, n_items, cold, initial=shared, clock=clock)
            return (*trained.model.embeddings(), trained.steps / trained.schedule.steps_per_epoch)

        for ladder in setting_choice.ladders(config):
            tried = setting_choice.choose(
                ladder,
                users[fit_idx],
                items[fit_idx],
                users[val_idx],
                items[val_idx],
                n_users,
                n_items,
                final,
                trial,
                clock,
                callbacks.on_trial,
            )
            final = final.given(**{ladder.setting: setting_choice.chosen(ladder, tried)})
            trials += tried
    budget = config.max_train_seconds
    remaining = None if budget is None else max(budget - (clock() - started), 0.0)
    trained = fit(
        users,
        items,
        n_users,
        n_items,
        replace(final, max_train_seconds=remaining),
        callbacks.on_epoch,
        callbacks.on_step,
        after_epoch=callbacks.after_epoch,
        initial=initial,
        clock=clock,
    )
    return replace(trained, trials=tuple(trials))


@dataclass(frozen=True)
class _Callbacks:
    """What ``fit`` reports to, passed on from the trials to the model's training."""

    on_epoch: Callable[[EpochStats], None] | None
    on_step: StepProgress | None
    after_epoch: Callable[[LightGCN], None] | None
    on_trial: Callable[[Trial], None] | None


@dataclass(frozen=True)
class _Start:
    kind: str
    initial: InitialState | None
    seconds: float


def _start(
    graph: sp.csr_matrix,
    config: TrainConfig,
    initial: InitialState | None,
    clock: Callable[[], float],
) -> _Start:
    """Where the layer-0 rows start: a warm start's carried rows (new users and items drawn at
    random); else, with ``spectral_start``, the graph's spectrum where it has ``dim`` directions
    (mixing both would put spectral rows in a basis the carried ones do not share); else noise."""
    if initial is not None:
        return _Start("warm", initial, 0.0)
    if config.spectral_start:
        started = clock()
        spectral = spectral_start(graph, config.dim, config.seed)
        if spectral is not None:
            return _Start("spectral", spectral, clock() - started)
    return _Start("cold", None, 0.0)


class _Budget:
    """Plans the number of steps that fit in ``seconds`` from the speed measured so far.

    The first step is left out of the speed: it traces the TensorFlow function. After that the
    speed is the latest one, measured since the previous plan, so a machine that slows down is
    planned for at its new speed. Validation and other per-epoch work count, since they are
    measured as part of the epochs' time.
    """

    def __init__(
        self, seconds: float | None, started: float, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.seconds = seconds
        self._started = started
        self._clock = clock
        self._mark: tuple[float, int] | None = None  # (time, steps) when the speed is timed from

    def step_done(self, step: int) -> None:
        if step == 1:
            self._mark = (self._clock(), step)

    def ready_to_plan(self, step: int) -> bool:
        return self.seconds is not None and step == 1 + _WARMUP_STEPS

    def plan(self, schedule: Schedule, step: int, max_epochs: int | None) -> Schedule:
        """The schedule that fits: as many steps as the remaining time allows at the latest
        speed, no more than ``max_epochs`` epochs, and at least one step more than those done.
        That step is the schedule's last, at the cosine's end: cut to the steps done, the last
        step would have had the rate the previous plan gave it mid-cosine."""
        if self.seconds is None or self._mark is None or step <= self._mark[1]:
            return schedule
        now = self._clock()
        per_step = (now - self._mark[0]) / (step - self._mark[1])
        self._mark = (now, step)
        remaining = self.seconds * _BUDGET_SHARE - (now - self._started)
        fits = step + max(1, math.floor(remaining / per_step))
        if max_epochs is None:
            return replace(schedule, total_steps=fits, budget_limited=True)
        most = max_epochs * schedule.steps_per_epoch
        return replace(schedule, total_steps=min(fits, most), budget_limited=fits < most)

    def replan(self, schedule: Schedule, step: int, max_epochs: int | None) -> Schedule:
        """Re-plan at an epoch's end, once the first plan was made and while steps remain (a
        completed schedule has ended its cosine)."""
        if self.seconds is None or step <= _WARMUP_STEPS or step >= schedule.total_steps:
            return schedule
        return self.plan(schedule, step, max_epochs)
