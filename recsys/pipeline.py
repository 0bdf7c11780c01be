"""One training run, end to end: snapshot → split → train → evaluate → score → publish.

Order matters for safety: options and data are checked before anything is written; the version
is locked first (so a second run of the same name stops at once) and recorded as running only
once the data has been read, split and checked; a failure after that marks the version failed
(or, for a replacement, leaves the published one untouched) and publishes nothing.

The model learns embeddings only for the users and items of the training split, so those items
are the only candidates it ranks, both when evaluated and when recommending, and only test
interactions whose user and item it learnt are evaluated (a temporal split's newcomers get the
popularity fallback instead; the baseline is evaluated on the same interactions).
"""

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import recsys
from recsys.data import split
from recsys.data.graph import interaction_matrix
from recsys.data.snapshot import Snapshot, read_snapshot
from recsys.errors import InvalidInput
from recsys.evaluation.baseline import popularity_scores
from recsys.evaluation.evaluate import evaluate
from recsys.evaluation.topk import top_k_embeddings, top_k_shared
from recsys.faults import checkpoint
from recsys.model.lightgcn import compute_device, configure_threads
from recsys.model.train import EpochStats, Schedule, StepProgress, fit
from recsys.run_config import RunConfig
from recsys.storage import registry
from recsys.storage.bulk import array_literal
from recsys.storage.publish import publish

#: Names under which the two rankers' figures are stored in ``evaluation_results.model``.
MODEL_NAMES = {"model": "lightgcn", "baseline": "popularity"}


@dataclass(frozen=True)
class _Split:
    """Positions of the train and test interactions, and what the model can learn from them."""

    train: np.ndarray
    test: np.ndarray
    trained: np.ndarray  # bool per user index: has training interactions
    candidates: np.ndarray  # item indices with training interactions: all the model can rank
    position: np.ndarray  # each item index's position in ``candidates``, -1 if not among them
    evaluated: np.ndarray  # positions of test interactions whose user and item are trained


@dataclass
class RunResult:
    version: str
    evaluation: pd.DataFrame
    history: list[EpochStats]
    best_epoch: int
    data_stats: dict[str, Any]
    phase_seconds: dict[str, float]


Report = Callable[[str], None]


def run(
    engine: sa.Engine,
    version: str,
    config: RunConfig,
    *,
    replace: bool = False,
    report: Report = print,
    on_step: StepProgress | None = None,
) -> RunResult:
    """Train, evaluate, score and publish ``version``; raises on failure (after recording it).

    ``report`` receives the run's lines (data, epochs, notes); ``on_step(done, total)`` each
    training step within its epoch, for a progress bar.
    """
    config.check()
    registry.validate_name(version)
    claim = registry.acquire(engine, version, replace=replace)
    try:
        timer = _PhaseTimer()
        with timer("read"):
            snapshot = read_snapshot(engine, config.min_rating)
        _check_data(snapshot, config)
        with timer("split"):
            parts = _split(snapshot, config)
        _check_split(parts, config)
        registry.start(engine, claim, config.params())
        try:
            checkpoint("started")
            result = _train_and_publish(
                engine, claim, snapshot, parts, config, timer, report, on_step
            )
        except BaseException as exc:
            registry.mark_failed(engine, claim, _describe(exc))
            raise
        return result
    finally:
        claim.release()


def _train_and_publish(
    engine: sa.Engine,
    claim: registry.Claim,
    snapshot: Snapshot,
    parts: _Split,
    config: RunConfig,
    timer: "_PhaseTimer",
    report: Report,
    on_step: StepProgress | None,
) -> RunResult:
    train_users, train_items = snapshot.user[parts.train], snapshot.item[parts.train]
    stats = _data_stats(snapshot, parts)
    report(
        f"data: {stats['users']:,} users, {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions → {len(parts.train):,} train / "
        f"{len(parts.test):,} test ({config.split})"
    )
    if stats["test_interactions_evaluated"] < stats["test_interactions"]:
        report(
            f"note: {stats['test_interactions_evaluated']:,} of {len(parts.test):,} test "
            "interactions evaluated; the others' user or item has no training interaction"
        )

    def on_epoch(epoch: EpochStats) -> None:
        checkpoint("training")
        validation = (
            f", val ndcg@{config.train.eval_k} {epoch.val_ndcg:.4f}"
            if epoch.val_ndcg is not None
            else ""
        )
        report(f"epoch {epoch.epoch:3d}: loss {epoch.loss:.4f}{validation} ({epoch.seconds:.1f} s)")

    configure_threads()
    device = compute_device()
    report(f"device: {device}")
    with timer("train"):
        trained = fit(
            train_users,
            train_items,
            snapshot.n_users,
            snapshot.n_items,
            config.train,
            on_epoch,
            on_step,
        )
    stats |= _training_stats(trained.schedule, config, device)
    report(
        f"best epoch {trained.best_epoch} of {len(trained.history)} "
        f"({trained.schedule.total_steps:,} steps of {trained.schedule.batch_size:,} triples"
        f"{'; as many as the time budget allowed' if trained.schedule.budget_limited else ''})"
    )
    user_emb, item_emb = trained.model.embeddings()

    with timer("evaluate"):
        evaluation = _evaluation_frame(
            evaluate(
                user_emb,
                item_emb[parts.candidates],
                train_users,
                parts.position[train_items],
                snapshot.user[parts.evaluated],
                parts.position[snapshot.item[parts.evaluated]],
                config.eval_ks,
            )
        )
    with timer("score"):
        recommendations = _recommendations(snapshot, parts, user_emb, item_emb, config.top_k)
        outputs = {
            "training_history": _history_frame(trained.history, config.train.eval_k),
            "evaluation_results": evaluation,
            **_embedding_frames(snapshot, parts, user_emb, item_emb),
            "recommendations": recommendations,
        }
    stats |= _short_lists(recommendations, snapshot.n_users, config.top_k, report)
    with timer("publish"):
        record = {
            "params": config.params(),
            "data_stats": stats,
            "phase_seconds": timer.seconds,
            "code_version": code_version(),
        }
        publish(engine, claim, outputs, record)
    registry.record_phase(engine, claim.version, "publish", timer.seconds["publish"])
    return RunResult(
        claim.version, evaluation, trained.history, trained.best_epoch, stats, timer.seconds
    )


def _check_data(snapshot: Snapshot, config: RunConfig) -> None:
    """Data-dependent checks, done before the version is recorded."""
    if len(snapshot.user) == 0:
        counted = f" with rating ≥ {config.min_rating}" if config.min_rating is not None else ""
        raise InvalidInput(f"no ratings{counted} to train on; ingest some first")
    if len(np.unique(snapshot.user)) < 2:
        raise InvalidInput(
            "only one user has ratings to train on: a collaborative model learns from users who"
            " share items, and this user has rated every item it could recommend"
        )
    if config.top_k > snapshot.n_items:
        raise InvalidInput(
            f"top-k {config.top_k} is larger than the {snapshot.n_items} items with interactions"
        )
    if config.split in ("temporal", "leave-last") and np.isnan(snapshot.timestamp).any():
        raise InvalidInput(f"the {config.split} split needs a timestamp on every rating")
    if config.split == "temporal" and config.cutoff is not None:
        first, last = snapshot.timestamp.min(), snapshot.timestamp.max()
        if not first < config.cutoff.timestamp() <= last:
            raise InvalidInput(
                f"cut-off {config.cutoff.isoformat()} leaves an empty train or test set: "
                f"ratings run from {_iso(first)} to {_iso(last)}"
            )


def _check_split(parts: _Split, config: RunConfig) -> None:
    """Refuse a split that leaves the model nothing to learn from or be evaluated on, before the
    version is recorded (training would log NaN losses; evaluation would average over nobody)."""
    if len(parts.train) == 0:
        raise InvalidInput(
            f"the {config.split} split left nothing to train on: every rating is at or after "
            "its cut-off (ratings sharing the cut-off time all go to test)"
        )
    if len(parts.test) == 0:
        raise InvalidInput(
            f"the {config.split} split left nothing to test: every user has a single "
            "interaction, and a lone interaction stays in training"
        )
    if len(parts.evaluated) == 0:
        raise InvalidInput(
            f"none of the {len(parts.test):,} test interactions of the {config.split} split has "
            "both its user and its item in training, so the model cannot be evaluated; choose "
            "another split or cut-off"
        )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _split(snapshot: Snapshot, config: RunConfig) -> _Split:
    if config.split == "stratified":
        train, test = split.stratified(snapshot.user, config.test_ratio, config.train.seed)
    elif config.split == "leave-last":
        train, test = split.leave_last(snapshot.user, snapshot.item, snapshot.timestamp)
    elif config.cutoff is not None:
        train, test = split.temporal(snapshot.timestamp, cutoff=config.cutoff.timestamp())
    else:
        train, test = split.temporal(snapshot.timestamp, test_ratio=config.test_ratio)
    trained = np.zeros(snapshot.n_users, dtype=bool)
    trained[snapshot.user[train]] = True
    candidates = np.unique(snapshot.item[train])
    position = np.full(snapshot.n_items, -1)
    position[candidates] = np.arange(len(candidates))
    known = trained[snapshot.user[test]] & (position[snapshot.item[test]] >= 0)
    return _Split(train, test, trained, candidates, position, test[known])


def _data_stats(snapshot: Snapshot, parts: _Split) -> dict[str, Any]:
    ts = snapshot.timestamp[~np.isnan(snapshot.timestamp)]
    users_in_training = int(parts.trained.sum())
    return {
        "users": snapshot.n_users,
        "items": snapshot.n_items,
        "movies_in_catalogue": snapshot.movies_total,
        "interactions": len(snapshot.user),
        "ratings_read": len(snapshot.rated_user),
        "train_interactions": len(parts.train),
        "test_interactions": len(parts.test),
        "test_interactions_evaluated": len(parts.evaluated),
        "users_in_training": users_in_training,
        "items_in_training": len(parts.candidates),
        "fallback_users": snapshot.n_users - users_in_training,
        "first_rated_at": _iso(ts.min()) if len(ts) else None,
        "last_rated_at": _iso(ts.max()) if len(ts) else None,
    }


def _training_stats(schedule: Schedule, config: RunConfig, device: str) -> dict[str, Any]:
    """What training did, beside what it was asked to: the batch its steps-per-epoch setting
    gave on this data, and the steps a time budget allowed."""
    return {
        "training_device": device,
        "training_batch_size": schedule.batch_size,
        "training_steps_per_epoch": schedule.steps_per_epoch,
        "training_steps_planned": schedule.total_steps,
        "training_epochs_planned": schedule.epochs,
        "training_budget_seconds": config.train.max_train_seconds,
        "training_budget_limited": schedule.budget_limited,
    }


def _short_lists(
    recommendations: pd.DataFrame, n_users: int, k: int, report: Report
) -> dict[str, int]:
    """Count (and report) users with fewer than k recommendations: they have rated all but a
    few of the items that can be recommended. Their lists are short, never padded."""
    per_user = recommendations.groupby("user_id").size()
    counts = {
        "users_without_recommendations": n_users - len(per_user),
        "users_with_fewer_than_k": int((per_user < k).sum()),
    }
    if any(counts.values()):
        report(
            f"note: users without a recommendation: {counts['users_without_recommendations']:,}"
            f", with fewer than {k}: {counts['users_with_fewer_than_k']:,} (they have rated every"
            " item that can be recommended, or all but a few)"
        )
    return counts


def _evaluation_frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": [MODEL_NAMES[r.model] for r in rows],
            "metric": [r.metric for r in rows],
            "k": [r.k for r in rows],
            "value": [r.value for r in rows],
            "users_counted": [r.n_users for r in rows],
        }
    )


def _history_frame(history: list[EpochStats], eval_k: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [h.epoch for h in history],
            "loss": [h.loss for h in history],
            "validation_metric": [
                f"ndcg@{eval_k}" if h.val_ndcg is not None else None for h in history
            ],
            "validation_value": [h.val_ndcg for h in history],
            "seconds": [h.seconds for h in history],
        }
    )


def _embedding_frames(
    snapshot: Snapshot, parts: _Split, user_emb: np.ndarray, item_emb: np.ndarray
) -> dict[str, pd.DataFrame]:
    """Embeddings of the users and items in the training graph (others were never learnt)."""
    users = np.flatnonzero(parts.trained)
    items = parts.candidates
    return {
        "user_embeddings": pd.DataFrame(
            {
                "user_id": snapshot.user_ids[users],
                "embedding": [array_literal(row) for row in user_emb[users]],
            }
        ),
        "item_embeddings": pd.DataFrame(
            {
                "movie_id": snapshot.item_ids[items],
                "embedding": [array_literal(row) for row in item_emb[items]],
            }
        ),
    }


def _recommendations(
    snapshot: Snapshot, parts: _Split, user_emb: np.ndarray, item_emb: np.ndarray, k: int
) -> pd.DataFrame:
    """Top-k for every user: the model's for users it has trained on, popularity otherwise.

    Candidates are the items in the training graph; every item a user has rated (counted as an
    interaction or not) is excluded, so a user with fewer than k unrated candidates gets fewer
    rows (none if they rated them all).
    """
    candidates, position = parts.candidates, parts.position
    rated_item = np.searchsorted(snapshot.item_ids, snapshot.rated_item)
    rated_item = np.minimum(rated_item, snapshot.n_items - 1)
    known = snapshot.item_ids[rated_item] == snapshot.rated_item
    rated_position = position[rated_item[known]]
    keep = rated_position >= 0
    exclude = interaction_matrix(
        snapshot.rated_user[known][keep], rated_position[keep], snapshot.n_users, len(candidates)
    )

    model_users, fallback_users = np.flatnonzero(parts.trained), np.flatnonzero(~parts.trained)
    model_items, model_scores = top_k_embeddings(
        user_emb, item_emb[candidates], k, exclude=exclude, users=model_users
    )
    popularity = popularity_scores(snapshot.item[parts.train], snapshot.n_items)[candidates]
    fallback_items, fallback_scores = top_k_shared(
        popularity, snapshot.n_users, k, exclude=exclude, users=fallback_users
    )
    parts = []
    for users, items, scores, source in (
        (model_users, model_items, model_scores, "model"),
        (fallback_users, fallback_items, fallback_scores, "fallback"),
    ):
        rank = np.tile(np.arange(1, k + 1), len(users))
        flat_items = items.reshape(-1)
        present = flat_items >= 0
        parts.append(
            pd.DataFrame(
                {
                    "user_id": np.repeat(snapshot.user_ids[users], k)[present],
                    "rank": rank[present],
                    "movie_id": snapshot.item_ids[candidates[flat_items[present]]],
                    "score": scores.reshape(-1)[present],
                    "source": source,
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values(["user_id", "rank"], ignore_index=True)


class _PhaseTimer:
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    root = Path(recsys.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return recsys.__version__
    return f"{recsys.__version__}+{commit}" if commit else recsys.__version__
