"""Seconds per training epoch: CSR propagation (ours) against COO, in one process.

Two graphs: MovieLens-100K's 75% stratified training part, and a synthetic graph the size
of ML-1M (6,040 users, 3,706 items, 1,000,209 distinct interactions, power-law user
activity and item popularity). For each, both variants train on the same BPR batches;
an epoch is ceil(interactions / batch) steps. On ML-100K whole epochs are timed; on the
ML-1M-sized graph a COO epoch takes many minutes, so both variants time ``--steps`` steps
and the epoch is extrapolated as steps/epoch × mean step time + the sampler's epoch time.

    python bench/train_speed.py [PATH] [--batch-size 1024] [--steps 20]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

from recsys.data import split
from recsys.data.graph import normalized_adjacency
from recsys.data.sampler import BprSampler
from recsys.ingest.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.settings import TrainConfig

REPO = Path(__file__).resolve().parents[1]
ML1M_USERS, ML1M_ITEMS, ML1M_INTERACTIONS = 6040, 3706, 1_000_209


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20, help="timed steps on the ML-1M graph")
    args = parser.parse_args()
    configure_threads()
    print(f"batch {args.batch_size}; load average {_load()}")

    ratings = parse_movielens(args.path).ratings
    _, users = np.unique(ratings["user_id"].to_numpy(), return_inverse=True)
    _, items = np.unique(ratings["movie_id"].to_numpy(), return_inverse=True)
    train, _ = split.stratified(users, 0.25, 1)
    _compare("ML-100K train 75%", users[train], items[train], args.batch_size, steps=None)
    _compare("synthetic ML-1M size", *synthetic_ml1m(), args.batch_size, steps=args.steps)
    print(f"load average {_load()}")


def synthetic_ml1m(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with Zipf-like item popularity and user activity."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, ML1M_ITEMS + 1) ** 0.9
    user_p = 1.0 / np.arange(1, ML1M_USERS + 1) ** 0.6
    item_p, user_p = rng.permutation(item_p / item_p.sum()), rng.permutation(user_p / user_p.sum())
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < ML1M_INTERACTIONS:
        n = 2 * (ML1M_INTERACTIONS - len(keys))
        drawn = rng.choice(ML1M_USERS, n, p=user_p) * ML1M_ITEMS + rng.choice(
            ML1M_ITEMS, n, p=item_p
        )
        keys = np.unique(np.concatenate([keys, drawn]))
    keys = rng.choice(keys, ML1M_INTERACTIONS, replace=False)
    return np.divmod(keys, ML1M_ITEMS)


def _compare(
    name: str, users: np.ndarray, items: np.ndarray, batch_size: int, steps: int | None
) -> None:
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    adjacency = normalized_adjacency(users, items, n_users, n_items)
    sampler = BprSampler(users, items, n_items, seed=0)
    started = time.perf_counter()
    batches = list(sampler.epoch(batch_size))
    sample_seconds = time.perf_counter() - started
    timed = batches if steps is None else batches[:steps]
    timing = "whole epochs" if steps is None else f"{steps} steps, the epoch extrapolated"
    extrapolated = "" if steps is None else f" (extrapolated from {steps} steps)"
    print(
        f"\n{name}: {n_users} users, {n_items} items, {sampler.n_samples} interactions, "
        f"{adjacency.nnz} adjacency entries; {len(batches)} steps/epoch; sampling "
        f"{sample_seconds:.3f} s/epoch; timing {timing}"
    )
    epoch_seconds = {}
    for propagation in ("csr", "coo"):
        model = LightGCN.from_config(adjacency, n_users, n_items, TrainConfig(), propagation)
        for batch in batches[:2]:  # trace and warm up
            model.train_step(*batch)
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in timed:
            loss, _ = model.train_step(*batch)
        float(loss)
        step_wall = (time.perf_counter() - wall) / len(timed)
        step_cpu = (time.process_time() - cpu) / len(timed)
        epoch_seconds[propagation] = step_wall * len(batches) + sample_seconds
        print(
            f"  {propagation}: {1000 * step_wall:7.1f} ms/step wall ({1000 * step_cpu:.1f} CPU) "
            f"→ {epoch_seconds[propagation]:8.2f} s/epoch{extrapolated}"
        )
    ratio = epoch_seconds["coo"] / epoch_seconds["csr"]
    print(f"  ratio coo/csr per epoch: {ratio:.1f}x{extrapolated}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
