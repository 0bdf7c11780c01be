"""Quality and fit time of LightGCN with the default TrainConfig on MovieLens-100K.

Stratified per-user 75/25 split, every rating an interaction, one run per seed; prints the
model's and the popularity baseline's metrics@k (mean ± sd over seeds) and the fit seconds
(wall, plus process CPU seconds to show when other work on the machine slowed the wall clock).

    python bench/quality.py [PATH] [--seeds 1 2 3] [--k 10]
"""

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from recsys.data import split
from recsys.evaluation.evaluate import evaluate
from recsys.ingest.movielens import parse_movielens
from recsys.model.lightgcn import configure_threads
from recsys.model.settings import TrainConfig
from recsys.model.train import fit

REPO = Path(__file__).resolve().parents[1]
SHOWN = ("ndcg", "precision", "recall", "map", "map_full")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    configure_threads()

    ratings = parse_movielens(args.path).ratings
    _, users = np.unique(ratings["user_id"].to_numpy(), return_inverse=True)
    _, items = np.unique(ratings["movie_id"].to_numpy(), return_inverse=True)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    print(f"{args.path}: {n_users} users, {n_items} items, {len(users)} interactions")
    print(f"defaults: {TrainConfig()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    figures: dict[tuple[str, str], list[float]] = {}
    fit_wall, fit_cpu = [], []
    for seed in args.seeds:
        train, test = split.stratified(users, 0.25, seed)
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit(users[train], items[train], n_users, n_items, TrainConfig(seed=seed))
        fit_wall.append(time.perf_counter() - wall)
        fit_cpu.append(time.process_time() - cpu)
        rows = evaluate(
            *result.model.embeddings(),
            users[train],
            items[train],
            users[test],
            items[test],
            (args.k,),
        )
        for row in rows:
            figures.setdefault((row.model, row.metric), []).append(row.value)
        shown = " ".join(f"{m} {figures[('model', m)][-1]:.4f}" for m in SHOWN)
        print(
            f"seed {seed}: {shown} | baseline ndcg {figures[('baseline', 'ndcg')][-1]:.4f} | "
            f"fit {fit_wall[-1]:.1f} s wall, {fit_cpu[-1]:.1f} s CPU, {len(result.history)} epochs"
        )

    print(f"\nmean ± sd over seeds {args.seeds}, k={args.k}, users counted {rows[0].n_users}:")
    for model in ("model", "baseline"):
        cells = [f"{m}@{args.k} {_mean_sd(figures[(model, m)])}" for m in SHOWN]
        print(f"  {model:8s} " + "  ".join(cells))
    print(f"  fit seconds: wall {_mean_sd(fit_wall, 1)}, CPU {_mean_sd(fit_cpu, 1)}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _mean_sd(values: list[float], digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


if __name__ == "__main__":
    main()
