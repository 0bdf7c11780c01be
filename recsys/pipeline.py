"""One training run, end to end: snapshot → split → train → evaluate → score → publish.

Order matters for safety: options and data are checked before anything is written; the version
is locked first (so a second run of the same name stops at once) and recorded as running only
once the data has been read and checked; a failure after that marks the version failed (or, for a
replacement, leaves the published one untouched) and publishes nothing.
"""

import math
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import recsys
from recsys import registry, split
from recsys.baseline import popularity_scores
from recsys.bulk import array_literal
from recsys.errors import RecsysError
from recsys.evaluate import evaluate
from recsys.faults import checkpoint
from recsys.graph import interaction_matrix
from recsys.interactions import Snapshot, read_snapshot
from recsys.model import configure_threads
from recsys.publish import publish
from recsys.scoring import top_k_embeddings, top_k_shared
from recsys.train import EpochStats, fit
from recsys.train_config import TrainConfig

SPLITS = ("stratified", "temporal", "leave-last")
#: Names under which the two rankers' figures are stored in ``evaluation_results.model``.
MODEL_NAMES = {"model": "lightgcn", "baseline": "popularity"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result; stored as the version's ``params``."""

    train: TrainConfig = field(default_factory=TrainConfig)
    split: str = "stratified"
    test_ratio: float = 0.25
    cutoff: datetime | None = None
    top_k: int = 10
    eval_ks: tuple[int, ...] = (10, 20)
    min_rating: float | None = None

    def check(self) -> None:
        """Reject settings that cannot produce a meaningful run, before any work."""
        problems = []
        if self.split not in SPLITS:
            problems.append(f"unknown split {self.split!r} (choose from {', '.join(SPLITS)})")
        uses_ratio = self.split == "stratified" or (self.split == "temporal" and not self.cutoff)
        if uses_ratio and not 0 < self.test_ratio < 1:
            problems.append(f"test ratio must be between 0 and 1, got {self.test_ratio}")
        if self.train.max_epochs < 1:
            problems.append(f"epochs must be at least 1, got {self.train.max_epochs}")
        if self.top_k < 1 or any(k < 1 for k in self.eval_ks) or not self.eval_ks:
            problems.append("top-k and every evaluation cut-off must be at least 1")
        if not 0 <= self.train.val_ratio < 1:
            problems.append(f"validation ratio must be in [0, 1), got {self.train.val_ratio}")
        for name in ("dim", "n_layers", "batch_size", "patience"):
            if getattr(self.train, name) < (0 if name == "n_layers" else 1):
                problems.append(f"{name} must be positive, got {getattr(self.train, name)}")
        if self.train.learning_rate <= 0 or self.train.l2 < 0:
            problems.append("learning rate must be positive and L2 weight not negative")
        if self.train.seed < 0:
            problems.append(f"seed must not be negative, got {self.train.seed}")
        numbers = {
            "learning rate": self.train.learning_rate,
            "L2 weight": self.train.l2,
            "min-rating": self.min_rating,
        }
        for name, value in numbers.items():
            if value is not None and not math.isfinite(value):  # NaN passes every comparison
                problems.append(f"{name} must be a finite number, got {value}")
        if problems:
            raise RecsysError("invalid run options: " + "; ".join(problems))

    def params(self) -> dict[str, Any]:
        flat = {k: v for k, v in asdict(self).items() if k != "train"} | asdict(self.train)
        flat["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        flat["eval_ks"] = list(self.eval_ks)
        return flat


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
) -> RunResult:
    """Train, evaluate, score and publish ``version``; raises on failure (after recording it)."""
    config.check()
    registry.validate_name(version)
    claim = registry.acquire(engine, version, replace=replace)
    try:
        timer = _PhaseTimer()
        with timer("read"):
            snapshot = read_snapshot(engine, config.min_rating)
        _check_data(snapshot, config)
        registry.start(engine, claim, config.params())
        try:
            checkpoint("started")
            result = _train_and_publish(engine, claim, snapshot, config, timer, report)
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
    config: RunConfig,
    timer: "_PhaseTimer",
    report: Report,
) -> RunResult:
    with timer("split"):
        train_idx, test_idx = _split(snapshot, config)
    train_users, train_items = snapshot.user[train_idx], snapshot.item[train_idx]
    stats = _data_stats(snapshot, train_idx, test_idx)
    report(
        f"data: {stats['users']:,} users, {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions → {len(train_idx):,} train / "
        f"{len(test_idx):,} test ({config.split})"
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
    with timer("train"):
        trained = fit(
            train_users, train_items, snapshot.n_users, snapshot.n_items, config.train, on_epoch
        )
    report(f"best epoch {trained.best_epoch} of {len(trained.history)}")
    user_emb, item_emb = trained.model.embeddings()

    with timer("evaluate"):
        evaluation = _evaluation_frame(
            evaluate(
                user_emb,
                item_emb,
                train_users,
                train_items,
                snapshot.user[test_idx],
                snapshot.item[test_idx],
                config.eval_ks,
            )
        )
    with timer("score"):
        outputs = {
            "training_history": _history_frame(trained.history, config.train.eval_k),
            "evaluation_results": evaluation,
            **_embedding_frames(snapshot, user_emb, item_emb, train_users, train_items),
            "recommendations": _recommendations(
                snapshot, user_emb, item_emb, train_users, train_items, config.top_k
            ),
        }
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
        raise RecsysError(f"no ratings{counted} to train on; ingest some first")
    if config.top_k > snapshot.n_items:
        raise RecsysError(
            f"top-k {config.top_k} is larger than the {snapshot.n_items} items with interactions"
        )
    if config.split in ("temporal", "leave-last") and np.isnan(snapshot.timestamp).any():
        raise RecsysError(f"the {config.split} split needs a timestamp on every rating")
    if config.split == "temporal" and config.cutoff is not None:
        first, last = snapshot.timestamp.min(), snapshot.timestamp.max()
        if not first < config.cutoff.timestamp() <= last:
            raise RecsysError(
                f"cut-off {config.cutoff.isoformat()} leaves an empty train or test set: "
                f"ratings run from {_iso(first)} to {_iso(last)}"
            )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _split(snapshot: Snapshot, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    if config.split == "stratified":
        return split.stratified(snapshot.user, config.test_ratio, config.train.seed)
    if config.split == "leave-last":
        return split.leave_last(snapshot.user, snapshot.item, snapshot.timestamp)
    if config.cutoff is not None:
        return split.temporal(snapshot.timestamp, cutoff=config.cutoff.timestamp())
    return split.temporal(snapshot.timestamp, test_ratio=config.test_ratio)


def _data_stats(snapshot: Snapshot, train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, Any]:
    trained_users = np.unique(snapshot.user[train_idx])
    ts = snapshot.timestamp[~np.isnan(snapshot.timestamp)]
    return {
        "users": snapshot.n_users,
        "items": snapshot.n_items,
        "movies_in_catalogue": snapshot.movies_total,
        "interactions": len(snapshot.user),
        "ratings_read": len(snapshot.rated_user),
        "train_interactions": len(train_idx),
        "test_interactions": len(test_idx),
        "users_in_training": len(trained_users),
        "items_in_training": len(np.unique(snapshot.item[train_idx])),
        "fallback_users": snapshot.n_users - len(trained_users),
        "first_rated_at": _iso(ts.min()) if len(ts) else None,
        "last_rated_at": _iso(ts.max()) if len(ts) else None,
    }


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
    snapshot: Snapshot,
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    train_users: np.ndarray,
    train_items: np.ndarray,
) -> dict[str, pd.DataFrame]:
    """Embeddings of the users and items in the training graph (others were never learnt)."""
    users = np.unique(train_users)
    items = np.unique(train_items)
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
    snapshot: Snapshot,
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    train_users: np.ndarray,
    train_items: np.ndarray,
    k: int,
) -> pd.DataFrame:
    """Top-k for every user: the model's for users it has trained on, popularity otherwise.

    Candidates are the items in the training graph; every item a user has rated (counted as an
    interaction or not) is excluded.
    """
    candidates = np.unique(train_items)
    position = np.full(snapshot.n_items, -1)
    position[candidates] = np.arange(len(candidates))
    rated_item = np.searchsorted(snapshot.item_ids, snapshot.rated_item)
    rated_item = np.minimum(rated_item, snapshot.n_items - 1)
    known = snapshot.item_ids[rated_item] == snapshot.rated_item
    rated_position = position[rated_item[known]]
    keep = rated_position >= 0
    exclude = interaction_matrix(
        snapshot.rated_user[known][keep], rated_position[keep], snapshot.n_users, len(candidates)
    )

    modelled = np.zeros(snapshot.n_users, dtype=bool)
    modelled[train_users] = True
    model_users, fallback_users = np.flatnonzero(modelled), np.flatnonzero(~modelled)
    model_items, model_scores = top_k_embeddings(
        user_emb, item_emb[candidates], k, exclude=exclude, users=model_users
    )
    popularity = popularity_scores(train_items, snapshot.n_items)[candidates]
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
