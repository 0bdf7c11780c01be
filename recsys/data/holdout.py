"""What a run holds out and learns from: a snapshot's split, the items the model can rank, the
test interactions it can be judged on, and the checks that refuse data a run cannot use.

The model learns embeddings only for the users and items of the training split, so those items
are the only candidates it ranks, both when evaluated and when recommending, and only test
interactions whose user and item it learnt are evaluated (a temporal split's newcomers get the
popularity fallback instead; the baseline is evaluated on the same interactions).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys.data import split
from recsys.data.snapshot import Snapshot
from recsys.data.spectrum import max_rank
from recsys.errors import InvalidInput
from recsys.run_config import RunConfig, Split


@dataclass(frozen=True)
class Holdout:
    """Positions of the train and test interactions, and what the model can learn from them."""

    train: np.ndarray
    test: np.ndarray
    trained: np.ndarray  # bool per user index: has training interactions
    candidates: np.ndarray  # item indices with training interactions: all the model can rank
    position: np.ndarray  # each item index's position in ``candidates``, -1 if not among them
    evaluated: np.ndarray  # positions of test interactions whose user and item are trained


def check_data(snapshot: Snapshot, config: RunConfig) -> None:
    """Data-dependent checks, done before the version is recorded."""
    if len(snapshot.user) == 0:
        counted = f" with rating ≥ {config.min_rating}" if config.min_rating is not None else ""
        raise InvalidInput(f"no ratings{counted} to train on; ingest some first")
    if snapshot.user.min() == snapshot.user.max():
        raise InvalidInput(
            "only one user has ratings to train on: a collaborative model learns from users who"
            " share items, and this user has rated every item it could recommend"
        )
    if config.top_k > snapshot.n_items:
        raise InvalidInput(
            f"top-k {config.top_k} is larger than the {snapshot.n_items} items with interactions"
        )
    if config.split in (Split.TEMPORAL, Split.LEAVE_LAST) and np.isnan(snapshot.timestamp).any():
        raise InvalidInput(f"the {config.split} split needs a timestamp on every rating")
    if config.split == Split.TEMPORAL and config.cutoff is not None:
        first, last = snapshot.timestamp.min(), snapshot.timestamp.max()
        if not first < config.cutoff.timestamp() <= last:
            raise InvalidInput(
                f"cut-off {config.cutoff.isoformat()} leaves an empty train or test set: "
                f"ratings run from {_iso(first)} to {_iso(last)}"
            )


def check_holdout(parts: Holdout, config: RunConfig) -> None:
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
    if config.gf_cf and config.spectral_rank is not None:
        most = max_rank(int(parts.trained.sum()), len(parts.candidates))
        if config.spectral_rank > most:
            raise InvalidInput(
                f"spectral rank {config.spectral_rank} is more than this data supports: "
                f"{parts.trained.sum():,} users and {len(parts.candidates):,} items in training "
                f"allow at most {most}; give a smaller --spectral-rank, or --baselines popularity"
            )
    if len(parts.evaluated) == 0:
        raise InvalidInput(
            f"none of the {len(parts.test):,} test interactions of the {config.split} split has "
            "both its user and its item in training, so the model cannot be evaluated; choose "
            "another split or cut-off"
        )


def holdout(snapshot: Snapshot, config: RunConfig) -> Holdout:
    if config.split == Split.STRATIFIED:
        train, test = split.stratified(snapshot.user, config.test_ratio, config.train.seed)
    elif config.split == Split.LEAVE_LAST:
        train, test = split.leave_last(snapshot.user, snapshot.item, snapshot.timestamp)
    elif config.cutoff is not None:
        train, test = split.temporal(snapshot.timestamp, cutoff=config.cutoff.timestamp())
    else:
        train, test = split.temporal(snapshot.timestamp, test_ratio=config.test_ratio)
    return _holdout(snapshot, train, test)


def whole(snapshot: Snapshot) -> Holdout:
    """Every interaction as training and nothing held out: what a refit learns from."""
    return _holdout(snapshot, np.arange(len(snapshot.user)), np.empty(0, np.int64))


def _holdout(snapshot: Snapshot, train: np.ndarray, test: np.ndarray) -> Holdout:
    trained = np.zeros(snapshot.n_users, dtype=bool)
    trained[snapshot.user[train]] = True
    candidates = np.flatnonzero(np.bincount(snapshot.item[train], minlength=snapshot.n_items))
    position = np.full(snapshot.n_items, -1)
    position[candidates] = np.arange(len(candidates))
    known = trained[snapshot.user[test]] & (position[snapshot.item[test]] >= 0)
    return Holdout(train, test, trained, candidates, position, test[known])


def data_stats(snapshot: Snapshot, parts: Holdout) -> dict[str, Any]:
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


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
