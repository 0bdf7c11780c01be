"""A run's settings: what decides its result, stored as the version's ``params``.

TensorFlow-free (like ``recsys.model.settings``) so the CLI can show defaults and check options
without loading it.
"""

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from recsys.errors import InvalidInput
from recsys.model.settings import TrainConfig


class Split(StrEnum):
    """The ways a run can hold out test interactions (see recsys/data/split.py). The values are
    what ``--split`` takes and a version's ``params`` store; a member equals its value."""

    STRATIFIED = "stratified"
    TEMPORAL = "temporal"
    LEAVE_LAST = "leave-last"


#: The split names, as ``--split`` and a config file take them.
SPLITS = tuple(split.value for split in Split)
#: The baselines a run can score beside its model: popularity (always: the reference of every
#: lift, and free) and GF-CF, the training-free spectral filter (recsys/evaluation/spectral.py).
POPULARITY, GF_CF = "popularity", "gf-cf"
BASELINES = (POPULARITY, GF_CF)


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result; stored as the version's ``params``."""

    train: TrainConfig = field(default_factory=TrainConfig)
    #: One of :class:`Split`'s values (a plain string, as ``--split`` and stored params have it).
    split: str = Split.STRATIFIED.value
    test_ratio: float = 0.25
    cutoff: datetime | None = None
    top_k: int = 10
    #: Similar items written per item (cosine of the final embeddings).
    similar_k: int = 10
    eval_ks: tuple[int, ...] = (10, 20)
    min_rating: float | None = None
    #: Publish from a second fit on every interaction (same settings) after evaluating the first.
    refit: bool = False
    #: Start from this version's (or alias's) layer-0 rows (recsys/versions/earlier_versions.py).
    warm_start: str | None = None
    #: Baselines scored beside the model on the same test set.
    baselines: tuple[str, ...] = BASELINES
    #: Rank of GF-CF's ideal low-pass filter; None: the paper's 256, or less where the data is
    #: too small for it (recsys/evaluation/spectral.py).
    spectral_rank: int | None = None
    #: Weight of GF-CF's ideal low-pass filter beside its linear one.
    spectral_alpha: float = 0.3

    @property
    def gf_cf(self) -> bool:
        """Whether the GF-CF baseline is scored."""
        return GF_CF in self.baselines

    @property
    def uses_test_ratio(self) -> bool:
        """Whether the split takes ``test_ratio`` (stratified; temporal without a cut-off)."""
        return self.split == Split.STRATIFIED or (self.split == Split.TEMPORAL and not self.cutoff)

    @property
    def uses_cutoff(self) -> bool:
        """Whether the split takes ``cutoff`` (temporal only)."""
        return self.split == Split.TEMPORAL

    def check(self) -> None:
        """Reject settings that cannot produce a meaningful run, before any work."""
        problems = []
        if self.split not in SPLITS:
            problems.append(f"unknown split {self.split!r} (choose from {', '.join(SPLITS)})")
        if self.uses_test_ratio and not 0 < self.test_ratio < 1:
            problems.append(f"test ratio must be between 0 and 1, got {self.test_ratio}")
        train = self.train
        if train.max_epochs is None and train.max_train_seconds is None:
            problems.append("give a number of epochs, or a time budget to size them")
        elif train.max_epochs is not None and train.max_epochs < 1:
            problems.append(f"epochs must be at least 1, got {train.max_epochs}")
        if self.top_k < 1 or any(k < 1 for k in self.eval_ks) or not self.eval_ks:
            problems.append("top-k and every evaluation cut-off must be at least 1")
        if self.similar_k < 1:
            problems.append(f"similar-k must be at least 1, got {self.similar_k}")
        unknown = [name for name in self.baselines if name not in BASELINES]
        if unknown or POPULARITY not in self.baselines:
            problems.append(
                f"baselines must be {POPULARITY} (the reference of every lift, always scored) "
                f"and optionally {GF_CF}, got {','.join(self.baselines) or 'none'}"
            )
        if self.spectral_rank is not None and self.spectral_rank < 1:
            problems.append(f"spectral rank must be at least 1, got {self.spectral_rank}")
        if not (math.isfinite(self.spectral_alpha) and self.spectral_alpha >= 0):
            problems.append(f"spectral alpha must be a number ≥ 0, got {self.spectral_alpha}")
        if not 0 <= train.val_ratio < 1:
            problems.append(f"validation ratio must be in [0, 1), got {train.val_ratio}")
        positive = ("dim", "n_layers", "steps_per_epoch", "batch_size", "patience")
        for name in (*positive, "negative_candidates"):
            value = getattr(train, name)
            if value is not None and value < (0 if name == "n_layers" else 1):
                problems.append(f"{name} must be positive, got {value}")
        if train.learning_rate <= 0 or train.l2 < 0:
            problems.append("learning rate must be positive and L2 weight not negative")
        if train.max_train_seconds is not None and not train.max_train_seconds > 0:
            budget = train.max_train_seconds
            problems.append(f"the training time budget must be positive, got {budget} s")
        if train.seed < 0:
            problems.append(f"seed must not be negative, got {train.seed}")
        numbers = {
            "learning rate": train.learning_rate,
            "L2 weight": train.l2,
            "min-rating": self.min_rating,
        }
        for name, value in numbers.items():
            if value is not None and not math.isfinite(value):  # NaN passes every comparison
                problems.append(f"{name} must be a finite number, got {value}")
        if problems:
            raise InvalidInput("invalid run options: " + "; ".join(problems))

    def describe(self) -> str:
        """The settings that decide the run, in a line (``recsys-job run`` starts with it)."""
        t = self.train
        batching = f"batch {t.batch_size}" if t.batch_size else f"{t.steps_per_epoch} steps/epoch"
        budget = f", budget {t.max_train_seconds:g} s" if t.max_train_seconds else ""
        epochs = f"≤{t.max_epochs} epochs" if t.max_epochs else "as many epochs as fit"
        start = "spectral start" if t.spectral_start else "cold start"
        l2 = "auto" if t.choose_l2 else f"{t.l2:g}"
        negatives = "auto" if t.choose_negatives else str(t.negative_candidates)
        return (
            f"{self.split} split, dim {t.dim}, {t.n_layers} layers, {batching}, "
            f"lr {t.learning_rate:g}, l2 {l2}, negatives {negatives}, {epochs}{budget}, "
            f"seed {t.seed}, {start}, "
            f"baselines {','.join(self.baselines)}"
        )

    def params(self) -> dict[str, Any]:
        flat = {k: v for k, v in asdict(self).items() if k != "train"} | asdict(self.train)
        flat["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        flat["eval_ks"] = list(self.eval_ks)
        flat["baselines"] = list(self.baselines)
        return flat
