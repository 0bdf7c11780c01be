"""What a run says and records about itself: its report lines, its ``data_stats`` entries, the
seconds of its phases, and the result it returns with its summary (text, or a record for JSON).

Public API:
    RunResult(...)  .summary() -> text  .record() -> dict (``run --json``)
    PhaseTimer()    ``with timer("train"):``; ``.seconds``
    data_lines(stats, split), epoch_line(epoch, eval_k, refit=False)
    training_stats(trained, config, device), trained_line(trained)
    trial_line(trial, eval_k), choice_lines(trained, eval_k)   settings chosen from the data
    refit_stats(refit, interactions), refit_line(refit, interactions)
    beaten_by(evaluation, report), short_lists(short, k, report)
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from recsys.evaluation.evaluate import BASELINE_ROWS, EvaluationRow
from recsys.model.setting_choice import LADDERS, Trial
from recsys.model.train import EpochStats, TrainResult
from recsys.run_config import RunConfig
from recsys.scoring import outputs
from recsys.scoring.recommender import ShortLists
from recsys.versions.listing import HEADLINE_METRICS
from recsys.versions.promotion import Decision

Report = Callable[[str], None]


@dataclass
class RunResult:
    version: str
    evaluation: pd.DataFrame
    history: list[EpochStats]
    best_epoch: int
    data_stats: dict[str, Any]
    phase_seconds: dict[str, float]
    #: What the promotion gate decided and did (None without ``--promote``).
    promotion: Decision | None = None

    def summary(self) -> str:
        """What ``recsys-job run`` prints when the version is published."""
        table = self.evaluation.pivot_table(index=["metric", "k"], columns="model", values="value")
        lines = [f"published {self.version}: best epoch {self.best_epoch}"]
        champion = self.data_stats.get("champion")
        if champion and "skipped" not in champion:
            lines.append(f"champion: {champion['version']} ({champion['compared_as']})")
        lines.append(table.to_string(float_format=lambda v: f"{v:.4f}"))
        if self.data_stats.get("refit"):
            lines.append(
                f"published embeddings and lists: refit on "
                f"{self.data_stats['refit_interactions']:,} interactions (the figures above are "
                "the held-out model's)"
            )
        seconds = self.phase_seconds
        phases = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
        lines.append(f"seconds: {phases}; total {sum(seconds.values()):.1f} s")
        if self.promotion is not None:
            outcome = "promoted to" if self.promotion.promoted else "not promoted to"
            lines.append(f"{outcome} {self.promotion.alias}: {self.promotion.reason}")
        return "\n".join(lines)

    def record(self) -> dict[str, object]:
        """``run --json``: what the run published, its figures and what the gate did."""
        return {
            "version": self.version,
            "best_epoch": self.best_epoch,
            "evaluation": self.evaluation.to_dict(orient="records"),
            "data_stats": self.data_stats,
            "phase_seconds": self.phase_seconds,
            "promotion": self.promotion.record() if self.promotion else None,
        }


class PhaseTimer:
    """Wall seconds per named phase, for the registry and the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(time.perf_counter() - started, 3)


def data_lines(stats: dict[str, Any], split: str) -> list[str]:
    """The run's data and split, said before training."""
    lines = [
        f"data: {stats['users']:,} users, {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions → {stats['train_interactions']:,} train / "
        f"{stats['test_interactions']:,} test ({split}); memory estimate "
        f"{stats['memory_estimate_mib']:,} MiB"
    ]
    if stats["test_interactions_evaluated"] < stats["test_interactions"]:
        lines.append(
            f"note: {stats['test_interactions_evaluated']:,} of {stats['test_interactions']:,} "
            "test interactions evaluated; the others' user or item has no training interaction"
        )
    return lines


def epoch_line(epoch: EpochStats, eval_k: int, refit: bool = False) -> str:
    validation = f", val ndcg@{eval_k} {epoch.val_ndcg:.4f}" if epoch.val_ndcg is not None else ""
    name = "refit epoch" if refit else "epoch"
    return f"{name} {epoch.epoch:3d}: loss {epoch.loss:.4f}{validation} ({epoch.seconds:.1f} s)"


def training_stats(trained: TrainResult, config: RunConfig, device: str) -> dict[str, Any]:
    """What training did, beside what it was asked to: the batch its steps-per-epoch setting
    gave on this data, the steps and epochs a time budget allowed, and the rate its last step
    applied (the cosine's end, with or without a budget)."""
    return {
        "training_device": device,
        "training_batch_size": trained.schedule.batch_size,
        "training_steps_per_epoch": trained.schedule.steps_per_epoch,
        "training_steps": trained.steps,
        "training_last_learning_rate": trained.last_rate,
        "training_epochs": len(trained.history),
        "training_budget_seconds": config.train.max_train_seconds,
        "training_budget_limited": trained.schedule.budget_limited,
        "training_start": trained.start,
        "training_start_seconds": round(trained.start_seconds, 3),
    } | choice_stats(trained)


#: How ``show`` and ``run`` name each setting the trials choose: as its option.
_OPTION = {ladder.setting: ladder.option for ladder in LADDERS}


def choice_stats(trained: TrainResult) -> dict[str, Any]:
    """Where the run chose settings from its data: each value and every trial, for ``show``
    (``training_l2_chosen``, ``training_l2_trials``, ``training_negatives_chosen``, ...)."""
    stats: dict[str, Any] = {}
    for setting, value in trained.chosen.items():
        name = _OPTION[setting]
        stats[f"training_{name}_chosen"] = value
        stats[f"training_{name}_trials"] = [
            {
                name: t.value,
                "val_ndcg": round(t.ndcg, 4),
                "users": t.users,
                "epochs": round(t.epochs, 2),
                "seconds": round(t.seconds, 1),
            }
            for t in trained.trials
            if t.setting == setting
        ]
    return stats


def trial_line(trial: Trial, eval_k: int) -> str:
    """A trial as it ends, so that the minutes before the first epoch show what they do."""
    return (
        f"trial {_OPTION[trial.setting]} {trial.value:.3g}: validation ndcg@{eval_k} "
        f"{trial.ndcg:.4f} ({trial.epochs:.3g} epochs, {trial.seconds:.1f} s)"
    )


def choice_lines(trained: TrainResult, eval_k: int) -> list[str]:
    """Each value the trials chose, and what each candidate scored on validation."""
    lines = []
    for setting, value in trained.chosen.items():
        trials = [t for t in trained.trials if t.setting == setting]
        scored = ", ".join(f"{t.value:.3g}: {t.ndcg:.4f}" for t in trials)
        seconds = sum(t.seconds for t in trials)
        name = _OPTION[setting]
        if len(trials) == 1:
            lines.append(
                f"{name} auto: kept {value:.3g}: a trial's share of the budget trained "
                f"{trials[0].epochs:.2g} epochs, too few to compare candidates ({seconds:.1f} s)"
            )
            continue
        lines.append(
            f"{name} auto: chose {value:.3g} by validation ndcg@{eval_k} "
            f"({scored}; {seconds:.1f} s of trials)"
        )
    return lines


def trained_line(trained: TrainResult) -> str:
    budget = "; as many as the time budget allowed" if trained.schedule.budget_limited else ""
    return (
        f"best epoch {trained.best_epoch} of {len(trained.history)} "
        f"({trained.schedule.total_steps:,} steps of {trained.schedule.batch_size:,} "
        f"triples{budget})"
    )


def refit_stats(refit: TrainResult, interactions: int) -> dict[str, Any]:
    return {
        "refit": True,
        "refit_interactions": interactions,
        "refit_epochs": len(refit.history),
        "refit_steps": refit.steps,
        "refit_batch_size": refit.schedule.batch_size,
    }


def refit_line(refit: TrainResult, interactions: int) -> str:
    return (
        f"refit on all {interactions:,} interactions: {len(refit.history)} epochs; the "
        "published embeddings and lists come from it, the evaluation from the held-out model"
    )


def beaten_by(evaluation: Sequence[EvaluationRow], report: Report) -> dict[str, list[str]]:
    """The headline figures (``METRIC@K``) on which a baseline beats the model, per baseline,
    said plainly: a user who learns that the filter wins should not have to find it in a table."""
    model = {(r.metric, r.k): r.value for r in evaluation if r.model == "model"}
    beaten: dict[str, list[str]] = {}
    for row in evaluation:
        headline = row.model in BASELINE_ROWS and row.metric in HEADLINE_METRICS
        if headline and row.value > model[row.metric, row.k]:
            beaten.setdefault(outputs.STORED_NAMES[row.model], []).append(f"{row.metric}@{row.k}")
    for name, figures in beaten.items():
        report(f"note: the {name} baseline beats LightGCN on {', '.join(figures)}")
    return beaten


def short_lists(short: ShortLists, k: int, report: Report) -> dict[str, int]:
    counts = {
        "users_without_recommendations": short.without,
        "users_with_fewer_than_k": short.fewer_than_k,
    }
    if any(counts.values()):
        report(
            f"note: users without a recommendation: {short.without:,}, with fewer than {k}: "
            f"{short.fewer_than_k:,} (they have rated every item that can be recommended, or all "
            "but a few)"
        )
    return counts
