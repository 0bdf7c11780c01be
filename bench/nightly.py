"""Nightly simulation: does a warm start reach a cold start's quality in fewer epochs?

MovieLens-100K replayed night by night, growing a day at a time: night d sees every rating before
its end; its temporal split tests on the last ``--test-days`` days and trains on everything
before. Each night trains twice on the same split, with the same settings:

- cold: layer-0 embeddings drawn at random, as a run without ``--warm-start``;
- warm: starting from the layer-0 rows the previous night published (the previous night's warm
  model: the chain a nightly ``run --warm-start production`` makes), matched by user and movie id
  with the product's ``carry``; users and movies new since start at random.

The previous night trained on ratings before its own cut-off, one day earlier than tonight's, so
the warm start is fair by the product's rule (``lineage.unfair_reason``, checked each night).
Both runs record the test NDCG@k after every epoch (``fit``'s ``after_epoch`` hook); the bench
prints, per night, the cold run's final NDCG@k, the first epoch at which the warm run reaches
it, and the share of the cold run's epochs that took, then the curves side by side.

A third run per night is what a scheduler would do with that: warm-started with a third of the
epochs (``--epochs`` ÷ 3, so its learning rate decays over those; at ``--short-learning-rate``,
default the same initial rate), and the bench prints its final NDCG@k beside the cold run's.

    python bench/nightly.py [PATH] [--nights 4] [--test-days 7] [--epochs 40] [--k 10]
        [--short-learning-rate LR] [--seed 0]
"""

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import lineage
from recsys.data.holdout import Holdout, holdout
from recsys.data.snapshot import Snapshot
from recsys.evaluation.evaluate import evaluate_holdout
from recsys.ingest.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.train import fit
from recsys.model.warm_start import InitialState, carry
from recsys.run_config import RunConfig

REPO = Path(__file__).resolve().parents[1]
DAY = 86_400.0


@dataclass(frozen=True)
class Published:
    """What a night published that the next one can start from: layer-0 rows by external id,
    and the record of what it learnt from."""

    user_ids: np.ndarray
    users: np.ndarray
    item_ids: np.ndarray
    items: np.ndarray
    stats: dict


@dataclass(frozen=True)
class Night:
    cutoff: datetime
    cold: list[float]
    warm: list[float]
    short: list[float]  # warm-started with a third of the epochs
    evaluated: int
    carried: tuple[int, int, int, int]  # users carried / users, items carried / items
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--nights", type=int, default=4, help="nights compared (after the first)")
    parser.add_argument("--test-days", type=float, default=7.0, help="test window of a night")
    parser.add_argument("--epochs", type=int, default=RunConfig().train.max_epochs)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--short-learning-rate", type=float, help="of the short warm run")
    args = parser.parse_args()
    configure_threads()
    ratings = parse_movielens(args.path).ratings
    seconds = ratings["rated_at"].astype("int64").to_numpy() // 10**9
    ratings = ratings.assign(ts=seconds.astype(np.float64)).sort_values("ts", kind="stable")
    last_day = np.floor(ratings["ts"].max() / DAY) * DAY + DAY  # the end of the last day
    ends = [last_day - (args.nights - night) * DAY for night in range(args.nights + 1)]
    train = dataclasses.replace(RunConfig().train, max_epochs=args.epochs, seed=args.seed)
    print(
        f"{args.path}: {len(ratings):,} ratings; {args.nights + 1} nights a day apart, each "
        f"testing on its last {args.test_days:g} days; {args.epochs} epochs, seed {args.seed}"
    )
    short_rate = args.short_learning_rate or train.learning_rate
    print(f"short warm run: {max(1, args.epochs // 3)} epochs at learning rate {short_rate:g}")
    print(f"load average before: {_load()}")

    previous: Published | None = None
    nights: list[Night] = []
    for night, end in enumerate(ends):
        started = time.perf_counter()
        snapshot = _snapshot(ratings[ratings["ts"] < end])
        cutoff = datetime.fromtimestamp(end - args.test_days * DAY, UTC)
        config = RunConfig(train=train, split="temporal", cutoff=cutoff, eval_ks=(args.k,))
        parts = holdout(snapshot, config)
        cold, cold_model = _fit(snapshot, parts, config, None, args.k)
        if previous is None:  # the first night only publishes, cold
            previous = _published(snapshot, parts, cold_model)
            print(f"night 0 ({_day(end)}): published cold, the first warm-start source")
            continue
        reason = lineage.unfair_reason(
            "previous", previous.stats, snapshot.timestamp[parts.test], config.split
        )
        assert reason is None, reason
        initial = InitialState(
            carry(snapshot.user_ids, [(previous.user_ids, previous.users)]),
            carry(snapshot.item_ids, [(previous.item_ids, previous.items)]),
        )
        warm, model = _fit(snapshot, parts, config, initial, args.k)
        third = dataclasses.replace(
            train,
            max_epochs=max(1, args.epochs // 3),
            learning_rate=args.short_learning_rate or train.learning_rate,
        )
        short, _ = _fit(snapshot, parts, dataclasses.replace(config, train=third), initial, args.k)
        carried = (
            len(initial.users.index),
            int(parts.trained.sum()),
            len(initial.items.index),
            len(parts.candidates),
        )
        seconds = time.perf_counter() - started
        nights.append(Night(cutoff, cold, warm, short, len(parts.evaluated), carried, seconds))
        _print_night(night, end, nights[-1], args.k)
        previous = _published(snapshot, parts, model)

    _summary(nights, args.k)
    print(f"load average after: {_load()}")


def _snapshot(ratings: pd.DataFrame) -> Snapshot:
    """The ratings up to a night's end as the product's snapshot (every rating an interaction;
    the users are those who rated)."""
    user_ids, user = np.unique(ratings["user_id"].to_numpy(np.int64), return_inverse=True)
    item_ids, item = np.unique(ratings["movie_id"].to_numpy(np.int64), return_inverse=True)
    return Snapshot(
        user_ids=user_ids,
        item_ids=item_ids,
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        rating=ratings["rating"].to_numpy(np.float32),
        timestamp=ratings["ts"].to_numpy(np.float64),
        rated_user=user.astype(np.int32),
        rated_item=ratings["movie_id"].to_numpy(np.int64),
        movies_total=len(item_ids),
    )


def _fit(
    snapshot: Snapshot,
    parts: Holdout,
    config: RunConfig,
    initial: InitialState | None,
    k: int,
) -> tuple[list[float], LightGCN]:
    """Train on the night's training split; the test NDCG@k after every epoch, and the model."""
    curve: list[float] = []

    def record(model: LightGCN) -> None:
        rows = evaluate_holdout(*model.embeddings(), snapshot, parts, (k,))
        curve.append(next(r.value for r in rows if (r.model, r.metric) == ("model", "ndcg")))

    result = fit(
        snapshot.user[parts.train],
        snapshot.item[parts.train],
        snapshot.n_users,
        snapshot.n_items,
        config.train,
        after_epoch=record,
        initial=initial,
    )
    return curve, result.model


def _published(snapshot: Snapshot, parts: Holdout, model: LightGCN) -> Published:
    """What the product publishes: the learnt users' and items' layer-0 rows and ids."""
    learnt = parts.trained.nonzero()[0]
    return Published(
        snapshot.user_ids[learnt],
        model.users.numpy()[learnt],
        snapshot.item_ids[parts.candidates],
        model.items.numpy()[parts.candidates],
        lineage.learnt_from(snapshot.timestamp[parts.train]),
    )


def _reached(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose figure is at least ``target``."""
    return next((epoch for epoch, value in enumerate(curve, 1) if value >= target), None)


def _print_night(night: int, end: float, n: Night, k: int) -> None:
    target = n.cold[-1]
    reached = _reached(n.warm, target)
    users, all_users, items, all_items = n.carried
    print(
        f"night {night} ({_day(end)}, test from {n.cutoff:%Y-%m-%d}, {n.evaluated:,} test "
        f"interactions evaluated; carried {users}/{all_users} users, {items}/{all_items} items; "
        f"{n.seconds:.0f} s): cold ndcg@{k} after {len(n.cold)} epochs {target:.4f}; warm "
        f"reaches it at epoch {reached or 'never'} ({_share(reached, len(n.cold))}) and ends at "
        f"{n.warm[-1]:.4f}; warm with {len(n.short)} epochs ends at {n.short[-1]:.4f}"
    )


def _summary(nights: list[Night], k: int) -> None:
    epochs, third = len(nights[0].cold), len(nights[0].short)
    print(f"\nper night, ndcg@{k} (test window from):")
    rows = [["", *(f"{n.cutoff:%m-%d}" for n in nights)]]
    rows.append([f"cold, {epochs} epochs", *(f"{n.cold[-1]:.4f}" for n in nights)])
    rows.append(
        [
            f"warm, first epoch reaching it (of {epochs})",
            *(str(_reached(n.warm, n.cold[-1]) or "never") for n in nights),
        ]
    )
    rows.append([f"warm, {epochs} epochs", *(f"{n.warm[-1]:.4f}" for n in nights)])
    rows.append([f"warm, {third} epochs", *(f"{n.short[-1]:.4f}" for n in nights)])
    _print_table(rows)
    reached = [_reached(n.warm, n.cold[-1]) for n in nights]
    within = sum(1 for r in reached if r is not None and r <= epochs / 3)
    matched = sum(1 for n in nights if n.short[-1] >= n.cold[-1])
    print(
        f"the warm run reached the cold run's final ndcg@{k} within a third of the epochs on "
        f"{within} of {len(nights)} nights; warm with {third} epochs matched or beat the cold "
        f"run with {epochs} on {matched} of {len(nights)} (mean "
        f"{_mean(n.short[-1] for n in nights):.4f} against {_mean(n.cold[-1] for n in nights):.4f})"
    )
    print(f"\ntest ndcg@{k} after each epoch, per night: cold, warm, warm with {third} epochs")
    runs = ("cold", "warm", "short")
    curves = [["epoch", *(f"{n.cutoff:%m-%d} {run}" for n in nights for run in runs)]]
    for epoch in range(epochs):
        series = [curve for n in nights for curve in (n.cold, n.warm, n.short)]
        cells = [f"{curve[epoch]:.4f}" if epoch < len(curve) else "" for curve in series]
        curves.append([str(epoch + 1), *cells])
    _print_table(curves)


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _mean(values) -> float:
    return float(np.mean(list(values)))


def _share(reached: int | None, epochs: int) -> str:
    return f"{reached / epochs:.0%} of the epochs" if reached else "not within the epochs"


def _day(end: float) -> str:
    return f"{datetime.fromtimestamp(end - DAY, UTC):%Y-%m-%d}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
