"""LightGCN training settings, in a module of their own so the CLI can show the defaults
without importing TensorFlow (which takes seconds). Why these defaults: recsys/model/train.py."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

#: Adam's initial rate for a warm-started run where none is given: it starts near a trained
#: model, which a restart at the cold rate scrambles for most of the schedule (measured by
#: bench/nightly.py; docs/nightly.md, Nightly runs).
WARM_START_LEARNING_RATE = 0.03


@dataclass(frozen=True)
class TrainConfig:
    """LightGCN training settings.

    dim, n_layers: embedding size and propagation depth (paper: 64, 3).
    l2: weight of the layer-0 L2 penalty on each batch's embeddings.
    choose_l2: choose the weight from the data instead, by short validation trials at the start
        of training inside its budget (recsys/model/setting_choice.py); ``l2`` is then unused.
    learning_rate: Adam's initial rate, decayed by a half cosine to 0 over the training steps.
    steps_per_epoch: steps in an epoch; the batch is the training interactions divided among
        them, so an epoch costs the same number of full-graph propagations at any data size.
    batch_size: triples per step instead (an epoch then has interactions ÷ batch steps, which
        grows with the data); None to use ``steps_per_epoch``.
    negative_candidates: uniform non-positive items drawn per triple; the step trains against
        the one the model scores highest (dynamic negative sampling, Zhang et al., SIGIR 2013).
    choose_negatives: choose ``negative_candidates`` from the data instead, by trials as for
        ``choose_l2`` (before them, where both are asked for).
    max_epochs: epochs to train (fewer if early stopping fires or the time budget is short);
        None with a time budget: as many as the budget allows.
    max_train_seconds: time budget of training; the schedule is sized from the measured speed
        of the first steps so that it completes within the budget. None: no budget.
    val_ratio: share of each user's training interactions held out for validation;
        0 disables validation and early stopping.
    patience: epochs without a better validation NDCG@eval_k before stopping.
    eval_k: cut-off of the validation NDCG.
    seed: seeds the validation split, the initial embeddings and the sampler.
    spectral_start: start the layer-0 rows from the top singular vectors of the normalised
        training graph (recsys/model/spectral_start.py) instead of noise, the SVD's time
        counted in the budget; a warm start's carried rows take precedence over it.
    """

    dim: int = 64
    n_layers: int = 3
    l2: float = 1e-3
    choose_l2: bool = False
    learning_rate: float = 0.1
    steps_per_epoch: int = 16
    batch_size: int | None = None
    negative_candidates: int = 1
    choose_negatives: bool = True
    max_epochs: int | None = 40
    max_train_seconds: float | None = None
    val_ratio: float = 0.0
    patience: int = 10
    eval_k: int = 10
    seed: int = 0
    spectral_start: bool = True

    def for_refit(
        self, best_epoch: int, chosen: Mapping[str, float] | None = None
    ) -> "TrainConfig":
        """The settings of a refit on every interaction after a held-out run whose best epoch was
        ``best_epoch``: the same epochs (or time budget); with validation, the epochs it chose,
        without holding any out; where the run chose settings by trials (``chosen``: field and
        value), those values, without choosing again."""
        refit = self.given(**chosen) if chosen else self
        if self.val_ratio > 0:
            return replace(refit, max_epochs=best_epoch, val_ratio=0.0)
        return refit

    def given(self, **values: float) -> "TrainConfig":
        """These settings with ``values`` (TrainConfig fields) set, and none left to trials."""
        return replace(self, **values, choose_l2=False, choose_negatives=False)

    def batching(self, n_samples: int) -> tuple[int, int]:
        """(triples per step, steps per epoch) for ``n_samples`` training triples an epoch."""
        if self.batch_size is not None:
            return self.batch_size, max(1, math.ceil(n_samples / self.batch_size))
        return max(1, math.ceil(n_samples / self.steps_per_epoch)), self.steps_per_epoch
