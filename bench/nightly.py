"""Nightly simulation: does a warm start reach a cold start's quality in fewer epochs?

MovieLens-100K replayed night by night, growing a day at a time: night d sees every rating before
its end; its temporal split tests on the last ``--test-days`` days and trains on everything
before. Each night trains on the same split, with the same settings:

- cold: layer-0 embeddings drawn at random, as a run without ``--warm-start``;
- warm: starting from the layer-0 rows the previous night published (the previous night's warm
  model: the chain a nightly ``run --warm-start production`` makes), matched by user and movie id
  with the product's ``carry``; users and movies new since start at random;
- short: warm-started the same way with a third of the epochs (its learning rate decays over
  those): what a scheduler would run.

``--warm-learning-rate`` sets the initial learning rate of both warm-started runs (default: the
product's for a warm start, ``WARM_START_LEARNING_RATE``, as ``run --warm-start`` without
``--learning-rate`` takes it), ``--short-learning-rate`` that of the short run alone.

The previous night trained on ratings before its own cut-off, one day earlier than tonight's, so
the warm start is fair by the product's rule (``lineage.unfair_reason``, checked each night).
Every run records the test NDCG@k after every epoch (``fit``'s ``after_epoch`` hook). A night
tests on the few dozen users who rated both before and after its cut-off, so one run's figure is
noisy: the chain is run once per seed and the bench prints, per night, the figures averaged over
the seeds (the first epoch at which the mean warm curve reaches the mean cold run's final
NDCG@k), the short run's mean final against the cold run's (the seeds' spread of the cold final
beside it, for scale), how many single runs got there within a third of the epochs, and the
mean curves.
Four seeds by default: cold runs that differ only in their seed end up to 0.016 apart on the
same night and test users (night 1, seeds 1-4: 0.1547-0.1709), more than the warm-cold gaps
the bench judges; a mean over four seeds halves that spread. The test users add their own
noise (a bootstrap over night 1's 68 users moves one run's NDCG@10 by sd 0.029), which more
seeds do not reduce; a longer ``--test-days`` barely helps (56 days: 125 users, sd 0.022) and
takes a fifth of the training data away.

PATH is a MovieLens directory (default ``../shared/data/ml-100k``) or an interactions CSV as
``ingest csv`` reads it. Interactions without timestamps (the Amazon-Book sample) arrive in a
seeded random order spread evenly over ``--days`` days: the data still grows night by night and
the split is still temporal, but "recent" carries no meaning beyond arrival. ``--eval-users N``
judges every run of a night on the same seeded sample of N of its test users, which keeps an
evaluation after every epoch affordable on large data.

    python bench/nightly.py [PATH] [--nights 3] [--test-days 14] [--epochs 40] [--k 10]
        [--seeds 1 2 3 4] [--warm-learning-rate LR] [--short-learning-rate LR]
        [--days 100] [--eval-users N]
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
from recsys.ingest.parse.csvfile import parse_csv
from recsys.ingest.parse.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.model.train import fit
from recsys.model.warm_start import InitialState, carry
from recsys.run_config import RunConfig, Split
from recsys.run_outputs import PublishedModel
from recsys.run_settings import resolve

REPO = Path(__file__).resolve().parents[1]
DAY = 86_400.0
RUNS = ("cold", "warm", "short")


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
    """One night of one seed's chain: each run's test NDCG@k after every epoch."""

    index: int
    seed: int
    cutoff: datetime
    cold: list[float]
    warm: list[float]
    short: list[float]
    evaluated: tuple[int, int]  # test interactions and users evaluated
    carried: tuple[int, int, int, int]  # users carried / users, items carried / items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--nights", type=int, default=3, help="nights compared (after the first)")
    parser.add_argument("--test-days", type=float, default=14.0, help="test window of a night")
    parser.add_argument("--epochs", type=int, default=RunConfig().train.max_epochs)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument(
        "--warm-learning-rate",
        type=float,
        default=WARM_START_LEARNING_RATE,
        help="of both warm-started runs",
    )
    parser.add_argument("--short-learning-rate", type=float, help="of the short warm run")
    parser.add_argument(
        "--days", type=float, default=100.0, help="span of interactions without timestamps"
    )
    parser.add_argument("--eval-users", type=int, help="test users sampled per night (all)")
    args = parser.parse_args()
    args.short_learning_rate = args.short_learning_rate or args.warm_learning_rate
    configure_threads()
    ratings = _timed(_ratings(args.path), args.days)
    last_day = np.floor(ratings["ts"].max() / DAY) * DAY + DAY  # the end of the last day
    ends = [last_day - (args.nights - night) * DAY for night in range(args.nights + 1)]
    base = dataclasses.replace(RunConfig().train, max_epochs=args.epochs)
    print(
        f"{args.path}: {len(ratings):,} ratings; {args.nights + 1} nights a day apart, each "
        f"testing on its last {args.test_days:g} days; {args.epochs} epochs (short: "
        f"{max(1, args.epochs // 3)}); learning rate cold {base.learning_rate:g}, warm "
        f"{args.warm_learning_rate:g}, short {args.short_learning_rate:g}; seeds {args.seeds}"
    )
    print(f"load average before: {_load()}")
    started = time.perf_counter()
    nights = [
        night
        for seed in args.seeds
        for night in _chain(ratings, ends, dataclasses.replace(base, seed=seed), args)
    ]
    _summary(nights, args.k)
    print(f"{time.perf_counter() - started:.0f} s; load average after: {_load()}")


def _ratings(path: Path) -> pd.DataFrame:
    """A MovieLens directory's or an interactions CSV's ratings, as the ingest parsers read them."""
    return (parse_movielens(path) if path.is_dir() else parse_csv(path)).ratings


def _timed(ratings: pd.DataFrame, days: float) -> pd.DataFrame:
    """The ratings in time order with ``ts`` in unix seconds; without timestamps, a seeded random
    order spread evenly over ``days`` days ending at the first second of 2026."""
    if ratings["rated_at"].isna().all():
        order = np.random.default_rng(0).permutation(len(ratings))
        end = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        seconds = end - days * DAY + np.arange(len(ratings)) * (days * DAY / len(ratings))
        print(f"no timestamps: a seeded random arrival order over {days:g} days")
        return ratings.iloc[order].assign(ts=seconds)
    seconds = ratings["rated_at"].astype("int64").to_numpy() // 10**9
    return ratings.assign(ts=seconds.astype(np.float64)).sort_values("ts", kind="stable")


def _sampled(snapshot: Snapshot, parts: Holdout, users: int | None) -> Holdout:
    """The night's split judged on a seeded sample of ``users`` of its evaluated test users (all
    of them when None), the same sample for every run of the night."""
    evaluated_users = np.unique(snapshot.user[parts.evaluated])
    if users is None or users >= len(evaluated_users):
        return parts
    chosen = np.random.default_rng(0).choice(evaluated_users, users, replace=False)
    keep = np.isin(snapshot.user[parts.evaluated], chosen)
    return dataclasses.replace(parts, evaluated=parts.evaluated[keep])


def _chain(
    ratings: pd.DataFrame, ends: list[float], train: TrainConfig, args: argparse.Namespace
) -> list[Night]:
    """One seed's nights: the first publishes a cold model, each later one starts from the
    previous night's warm model."""
    previous: Published | None = None
    nights: list[Night] = []
    for index, end in enumerate(ends):
        snapshot = _snapshot(ratings[ratings["ts"] < end])
        cutoff = datetime.fromtimestamp(end - args.test_days * DAY, UTC)
        config = _night_config(train, cutoff, args.k)
        parts = _sampled(snapshot, holdout(snapshot, config), args.eval_users)
        cold, cold_model = _fit(snapshot, parts, config, None, args.k)
        if previous is None:
            previous = _published(snapshot, parts, cold_model)
            continue
        reason = lineage.unfair_reason(
            "previous", previous.stats, snapshot.timestamp[parts.test], config.split
        )
        assert reason is None, reason
        initial = InitialState(
            carry(snapshot.user_ids, [(previous.user_ids, previous.users)]),
            carry(snapshot.item_ids, [(previous.item_ids, previous.items)]),
        )
        warm_train = dataclasses.replace(train, learning_rate=args.warm_learning_rate)
        warm_config = dataclasses.replace(config, train=warm_train)
        warm, model = _fit(snapshot, parts, warm_config, initial, args.k)
        third = dataclasses.replace(
            warm_train,
            max_epochs=max(1, args.epochs // 3),
            learning_rate=args.short_learning_rate,
        )
        short, _ = _fit(snapshot, parts, dataclasses.replace(config, train=third), initial, args.k)
        evaluated = (len(parts.evaluated), len(np.unique(snapshot.user[parts.evaluated])))
        carried = (
            len(initial.users.index),
            int(parts.trained.sum()),
            len(initial.items.index),
            len(parts.candidates),
        )
        nights.append(Night(index, train.seed, cutoff, cold, warm, short, evaluated, carried))
        _print_night(nights[-1], args.k)
        previous = _published(snapshot, parts, model)
    return nights


def _night_config(train: TrainConfig, cutoff: datetime, k: int) -> RunConfig:
    """A night's settings as ``run --split temporal --cutoff CUTOFF --eval-k K`` resolves them
    (recsys/run_settings.py), trained with ``train``."""
    given = {"model_version": "night", "split": Split.TEMPORAL, "cutoff": cutoff, "eval_k": [k]}
    return dataclasses.replace(resolve(given).config, train=train)


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
    """What the product publishes (recsys/run_outputs.py): the learnt users' and the candidate
    items' layer-0 rows and ids, and what the model learnt from."""
    published = PublishedModel.of(snapshot, parts, model)
    user_ids, _, users = published.users()
    item_ids, _, items = published.items()
    return Published(user_ids, users, item_ids, items, published.lineage())


def _reached(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose figure is at least ``target``."""
    return next((epoch for epoch, value in enumerate(curve, 1) if value >= target), None)


def _print_night(n: Night, k: int) -> None:
    reached = _reached(n.warm, n.cold[-1])
    users, all_users, items, all_items = n.carried
    print(
        f"seed {n.seed}, night {n.index} (test from {n.cutoff:%Y-%m-%d}: {n.evaluated[0]:,} "
        f"interactions of {n.evaluated[1]} users evaluated; carried {users}/{all_users} users, "
        f"{items}/{all_items} items): cold ndcg@{k} {n.cold[-1]:.4f} after {len(n.cold)} "
        f"epochs; warm reaches it at epoch {reached or 'never'}, ends at {n.warm[-1]:.4f}; "
        f"short ends at {n.short[-1]:.4f}"
    )


def _summary(nights: list[Night], k: int) -> None:
    epochs, third = len(nights[0].cold), len(nights[0].short)
    by_night: dict[int, list[Night]] = {}
    for n in nights:
        by_night.setdefault(n.index, []).append(n)
    means = {
        index: {run: np.mean([getattr(n, run) for n in group], axis=0) for run in RUNS}
        for index, group in sorted(by_night.items())
    }
    print(f"\nper night, mean over seeds of ndcg@{k} (test window from):")
    rows = [["", *(f"{group[0].cutoff:%m-%d}" for group in by_night.values())]]
    rows.append([f"cold, {epochs} epochs", *(f"{m['cold'][-1]:.4f}" for m in means.values())])
    if len(nights) > len(by_night):
        spread = [np.std([n.cold[-1] for n in group], ddof=1) for group in by_night.values()]
        rows.append(["  its spread over seeds (sd)", *(f"{sd:.4f}" for sd in spread)])
    rows.append(
        [
            f"warm, first epoch reaching it (of {epochs})",
            *(str(_reached(m["warm"], m["cold"][-1]) or "never") for m in means.values()),
        ]
    )
    rows.append([f"warm, {epochs} epochs", *(f"{m['warm'][-1]:.4f}" for m in means.values())])
    rows.append(
        [f"short: warm, {third} epochs", *(f"{m['short'][-1]:.4f}" for m in means.values())]
    )
    rows.append(
        ["  short − cold", *(f"{m['short'][-1] - m['cold'][-1]:+.4f}" for m in means.values())]
    )
    _print_table(rows)
    reached = [_reached(n.warm, n.cold[-1]) for n in nights]
    within = sum(1 for r in reached if r is not None and r <= epochs / 3)
    matched = sum(1 for n in nights if n.short[-1] >= n.cold[-1])
    print(
        f"single runs (night × seed): the warm run reached its cold run's final ndcg@{k} within "
        f"a third of the epochs in {within} of {len(nights)} (epochs: "
        f"{', '.join(str(r or 'never') for r in reached)}); the short run matched or beat the "
        f"cold run in {matched} of {len(nights)}"
    )
    print(f"\nmean test ndcg@{k} after each epoch, per night: {', '.join(RUNS)}")
    curves = [
        [
            "epoch",
            *(f"{nights_[0].cutoff:%m-%d} {run}" for nights_ in by_night.values() for run in RUNS),
        ]
    ]
    series = [m[run] for m in means.values() for run in RUNS]
    for epoch in range(epochs):
        cells = [f"{curve[epoch]:.4f}" if epoch < len(curve) else "" for curve in series]
        curves.append([str(epoch + 1), *cells])
    _print_table(curves)


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
