"""Quality and fit time of LightGCN on real data, for one or more training settings side by side.

Two data sets: MovieLens-100K (``--data ml100k``: stratified per-user 75/25, every rating an
interaction, seeds 1-3, k = 10) and the Amazon-Book sample (``--data amazon``: 603K implicit
interactions, stratified 80/20, seed 1, k = 20). As ``recsys-job run`` does, only items with
training interactions are ranked and only test interactions whose user and item were learnt are
counted. Prints the model's and the popularity baseline's metrics@k (mean ± sd over seeds) and the
fit seconds (wall, plus process CPU seconds to show when other work slowed the wall clock), the
settings side by side. ``--variant`` gives a setting as TrainConfig changes over the defaults
(``defaults`` for none, ``old`` for the defaults before steps-per-epoch: batch 4096, learning rate
0.05); ``--curve`` also prints the test NDCG@k after every epoch.

    python bench/quality.py [--data ml100k|amazon] [--seeds 1 2 3] [--k 10]
        [--variant old --variant defaults ...] [--curve]

The tuning claims of the README, each with its command:
    python bench/quality.py --variant old --variant defaults              ML-100K, old and new
    python bench/quality.py --data amazon --variant old --variant defaults  the Amazon-Book sample
    python bench/quality.py --variant l2=1e-4 --variant defaults --curve  L2 1e-4 against 1e-3
    python bench/quality.py --variant defaults --variant val_ratio=0.1   validation off / on
"""

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import split
from recsys.evaluation.evaluate import evaluate
from recsys.ingest.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.settings import TrainConfig
from recsys.model.train import fit

REPO = Path(__file__).resolve().parents[1]
SHOWN = ("ndcg", "precision", "recall", "map", "map_full")
FIELDS = {f.name for f in dataclasses.fields(TrainConfig) if f.name != "seed"}
WHOLE = {f.name for f in dataclasses.fields(TrainConfig) if "int" in str(f.type)}
#: The training defaults before steps per epoch (a fixed batch, the rate tuned for it).
OLD_DEFAULTS = {"batch_size": 4096, "learning_rate": 0.05}
DATA = {
    # name: (path under ../shared/data, test ratio, seeds, k)
    "ml100k": ("ml-100k", 0.25, [1, 2, 3], 10),
    "amazon": ("amazon-book-sample/interactions.csv", 0.2, [1], 20),
}


@dataclass
class Variant:
    """One setting (TrainConfig changes over the defaults) and what its runs measured."""

    name: str
    changes: dict[str, float]
    figures: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    fit_wall: list[float] = field(default_factory=list)
    fit_cpu: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    #: Per seed, the test NDCG@k after each epoch (with --curve).
    curves: list[list[float]] = field(default_factory=list)

    def config(self, seed: int) -> TrainConfig:
        return dataclasses.replace(TrainConfig(seed=seed), **self.changes)


def variant(text: str) -> Variant:
    """``name=value[,name=value...]`` over the TrainConfig defaults; an item ``old`` stands for
    the old defaults' changes, ``defaults`` for none."""
    changes: dict[str, float] = {}
    for item in text.split(","):
        if item in ("defaults", "old"):
            changes |= OLD_DEFAULTS if item == "old" else {}
            continue
        name, _, value = item.partition("=")
        if name not in FIELDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(FIELDS)}")
        changes[name] = int(value) if name in WHOLE else float(value)
    return Variant(text, changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATA, default="ml100k")
    parser.add_argument("--path", type=Path, help="the data set (default: under ../shared/data)")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 1 2 3 (ml100k), 1 (amazon)")
    parser.add_argument("--k", type=int, help="default: 10 (ml100k), 20 (amazon)")
    parser.add_argument("--variant", type=variant, action="append", dest="variants")
    parser.add_argument("--curve", action="store_true", help="test NDCG@k after every epoch")
    args = parser.parse_args()
    where, test_ratio, seeds, k = DATA[args.data]
    path = args.path or REPO.parent / "shared" / "data" / where
    seeds, k = args.seeds or seeds, args.k or k
    variants = args.variants or [variant("defaults")]
    configure_threads()

    users, items = _interactions(args.data, path)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    print(f"{path}: {n_users} users, {n_items} items, {len(users)} interactions")
    print(f"defaults: {TrainConfig()}")
    print(f"load average before: {_load()}")

    for seed in seeds:
        train, test = split.stratified(users, test_ratio, seed)
        held_out = _held_out(users, items, train, test)
        for v in variants:
            curve: list[float] = []
            wall, cpu = time.perf_counter(), time.process_time()
            result = fit(
                users[train],
                items[train],
                n_users,
                n_items,
                v.config(seed),
                after_epoch=_recorder(curve, held_out, k) if args.curve else None,
            )
            v.fit_wall.append(time.perf_counter() - wall)
            v.fit_cpu.append(time.process_time() - cpu)
            v.epochs.append(len(result.history))
            v.curves.append(curve)
            rows = _evaluate(result.model, held_out, k)
            for row in rows:
                v.figures.setdefault((row.model, row.metric), []).append(row.value)
            shown = " ".join(f"{m} {v.figures[('model', m)][-1]:.4f}" for m in SHOWN)
            print(
                f"seed {seed} {v.name}: {shown} | baseline ndcg "
                f"{v.figures[('baseline', 'ndcg')][-1]:.4f} | fit {v.fit_wall[-1]:.1f} s wall, "
                f"{v.fit_cpu[-1]:.1f} s CPU, {len(result.history)} epochs, "
                f"{result.steps} steps of {result.schedule.batch_size} (best {result.best_epoch})"
            )

    print(f"\nmean ± sd over seeds {seeds}, k={k}, users counted {rows[0].n_users}:")
    _side_by_side(variants, k)
    if args.curve:
        _curves(variants, k)
    print(f"load average after: {_load()}")


def _interactions(data: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous user and item indices of every interaction."""
    if data == "ml100k":
        ratings = parse_movielens(path).ratings
        user_ids, item_ids = ratings["user_id"].to_numpy(), ratings["movie_id"].to_numpy()
    else:
        frame = pd.read_csv(path, dtype="int64")
        user_ids, item_ids = frame["user_id"].to_numpy(), frame["item_id"].to_numpy()
    _, users = np.unique(user_ids, return_inverse=True)
    _, items = np.unique(item_ids, return_inverse=True)
    return users, items


@dataclass(frozen=True)
class HeldOut:
    """A split as the pipeline evaluates it: candidates are the items with training
    interactions, and only test pairs whose user and item were learnt count."""

    train_users: np.ndarray
    train_positions: np.ndarray
    test_users: np.ndarray
    test_positions: np.ndarray
    candidates: np.ndarray


def _held_out(users: np.ndarray, items: np.ndarray, train: np.ndarray, test: np.ndarray) -> HeldOut:
    candidates = np.unique(items[train])
    position = np.full(items.max() + 1, -1)
    position[candidates] = np.arange(len(candidates))
    learnt_users = np.zeros(users.max() + 1, dtype=bool)
    learnt_users[users[train]] = True
    known = learnt_users[users[test]] & (position[items[test]] >= 0)
    return HeldOut(
        users[train],
        position[items[train]],
        users[test][known],
        position[items[test][known]],
        candidates,
    )


def _evaluate(model: LightGCN, held: HeldOut, k: int) -> list:
    user_emb, item_emb = model.embeddings()
    return evaluate(
        user_emb,
        item_emb[held.candidates],
        held.train_users,
        held.train_positions,
        held.test_users,
        held.test_positions,
        (k,),
    )


def _recorder(curve: list[float], held_out: HeldOut, k: int) -> Callable[[LightGCN], None]:
    """An ``after_epoch`` hook that appends the model's test NDCG@k to ``curve``."""

    def record(model: LightGCN) -> None:
        rows = _evaluate(model, held_out, k)
        curve.append(next(r.value for r in rows if (r.model, r.metric) == ("model", "ndcg")))

    return record


def _side_by_side(variants: list[Variant], k: int) -> None:
    table = [["", *(v.name for v in variants)]]
    for model, suffix in (("model", ""), ("baseline", " popularity")):
        for m in SHOWN:
            table.append([f"{m}@{k}{suffix}", *(_mean_sd(v.figures[(model, m)]) for v in variants)])
    for label, measured in (
        ("fit seconds (wall)", "fit_wall"),
        ("fit seconds (CPU)", "fit_cpu"),
        ("epochs trained", "epochs"),
    ):
        table.append([label, *(_mean_sd(getattr(v, measured), 1) for v in variants)])
    _print_table(table)


def _curves(variants: list[Variant], k: int) -> None:
    """Mean test NDCG@k over seeds after each epoch; a run that stopped early leaves blanks."""
    print(f"\ntest ndcg@{k} after each epoch (mean over seeds):")
    longest = max(len(curve) for v in variants for curve in v.curves)
    table = [["epoch"] + [v.name for v in variants]]
    for epoch in range(longest):
        cells = []
        for v in variants:
            values = [curve[epoch] for curve in v.curves if len(curve) > epoch]
            cells.append(f"{statistics.mean(values):.4f}" if values else "")
        table.append([str(epoch + 1), *cells])
    _print_table(table)


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _mean_sd(values: list[float], digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
