"""Quality and fit time of LightGCN on MovieLens-100K, for one or more training settings.

Stratified per-user 75/25 split, every rating an interaction, one run per seed and setting;
prints the model's and the popularity baseline's metrics@k (mean ± sd over seeds) and the fit
seconds (wall, plus process CPU seconds to show when other work on the machine slowed the wall
clock), the settings side by side. ``--variant`` gives a setting as TrainConfig changes over the
defaults (``defaults`` for none); ``--curve`` also prints the test NDCG@k after every epoch.

    python bench/quality.py [PATH] [--seeds 1 2 3] [--k 10] [--variant l2=1e-4 ...] [--curve]

The tuning claims of the README, each with its command:
    python bench/quality.py                                              the defaults' figures
    python bench/quality.py --variant l2=1e-4 --variant defaults --curve  L2 1e-4 against 1e-3
    python bench/quality.py --variant defaults --variant val_ratio=0.1   validation off / on
    python bench/quality.py --variant batch_size=1024,learning_rate=0.015,max_epochs=15 \\
        --variant defaults                                  the reference settings against ours
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

from recsys.data import split
from recsys.evaluation.evaluate import evaluate
from recsys.ingest.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.settings import TrainConfig
from recsys.model.train import fit

REPO = Path(__file__).resolve().parents[1]
SHOWN = ("ndcg", "precision", "recall", "map", "map_full")
FIELDS = {f.name: f.type for f in dataclasses.fields(TrainConfig) if f.name != "seed"}


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
    """``name=value[,name=value...]`` over the TrainConfig defaults, or ``defaults``."""
    if text == "defaults":
        return Variant(text, {})
    changes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in FIELDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(FIELDS)}")
        changes[name] = int(value) if FIELDS[name] is int else float(value)
    return Variant(text, changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--variant", type=variant, action="append", dest="variants")
    parser.add_argument("--curve", action="store_true", help="test NDCG@k after every epoch")
    args = parser.parse_args()
    variants = args.variants or [variant("defaults")]
    configure_threads()

    ratings = parse_movielens(args.path).ratings
    _, users = np.unique(ratings["user_id"].to_numpy(), return_inverse=True)
    _, items = np.unique(ratings["movie_id"].to_numpy(), return_inverse=True)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    print(f"{args.path}: {n_users} users, {n_items} items, {len(users)} interactions")
    print(f"defaults: {TrainConfig()}")
    print(f"load average before: {_load()}")

    for seed in args.seeds:
        train, test = split.stratified(users, 0.25, seed)
        held_out = (users[train], items[train], users[test], items[test])
        for v in variants:
            curve: list[float] = []
            wall, cpu = time.perf_counter(), time.process_time()
            result = fit(
                users[train],
                items[train],
                n_users,
                n_items,
                v.config(seed),
                after_epoch=_recorder(curve, held_out, args.k) if args.curve else None,
            )
            v.fit_wall.append(time.perf_counter() - wall)
            v.fit_cpu.append(time.process_time() - cpu)
            v.epochs.append(len(result.history))
            v.curves.append(curve)
            rows = evaluate(*result.model.embeddings(), *held_out, (args.k,))
            for row in rows:
                v.figures.setdefault((row.model, row.metric), []).append(row.value)
            shown = " ".join(f"{m} {v.figures[('model', m)][-1]:.4f}" for m in SHOWN)
            print(
                f"seed {seed} {v.name}: {shown} | baseline ndcg "
                f"{v.figures[('baseline', 'ndcg')][-1]:.4f} | fit {v.fit_wall[-1]:.1f} s wall, "
                f"{v.fit_cpu[-1]:.1f} s CPU, {len(result.history)} epochs "
                f"(best {result.best_epoch})"
            )

    print(f"\nmean ± sd over seeds {args.seeds}, k={args.k}, users counted {rows[0].n_users}:")
    _side_by_side(variants, args.k)
    if args.curve:
        _curves(variants, args.k)
    print(f"load average after: {_load()}")


def _recorder(curve: list[float], held_out: tuple, k: int) -> Callable[[LightGCN], None]:
    """An ``after_epoch`` hook that appends the model's test NDCG@k to ``curve``."""

    def record(model: LightGCN) -> None:
        rows = evaluate(*model.embeddings(), *held_out, (k,))
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
