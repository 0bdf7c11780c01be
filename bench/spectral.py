"""The GF-CF baseline's SVD: recsys's randomized SVD against scipy's ``svds`` (ARPACK), side by
side on one split, each judged by the seconds it takes and by the filter's recall@k and NDCG@k
with its basis (equal accuracy means equal lists, not equal digits), with peak RSS.

    python bench/spectral.py [--data ml100k|amazon|synthetic] [--rank 256] [--size N]
        [--power-iterations 4 ...] [--alpha 0.3]

The split and the judging are bench/quality.py's (the pipeline's holdout and evaluation).
"""

import argparse
import dataclasses
import time

import numpy as np
import scipy.sparse.linalg as sla
from quality import DATA, REPO, _load, _snapshot

from recsys.data.graph import interaction_matrix, normalized_interactions
from recsys.data.holdout import holdout
from recsys.data.spectrum import top_singular
from recsys.evaluation.evaluate import holdout_sets
from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.spectral import spectral_filter, spectral_top_k
from recsys.memory import peak_rss_bytes
from recsys.model.settings import TrainConfig
from recsys.run_config import RunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATA, default="amazon")
    parser.add_argument("--size", type=int, default=500_000, help="synthetic interactions")
    parser.add_argument("--rank", type=int, default=256)
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--power-iterations", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    where, test_ratio, seeds, k = DATA[args.data]
    snapshot = _snapshot(args.data, REPO.parent / "shared" / "data" / str(where), args.size)
    parts = holdout(snapshot, RunConfig(test_ratio=test_ratio, train=TrainConfig(seed=seeds[0])))
    train_users, train_items, test_users, test_items = holdout_sets(snapshot, parts)
    n_users, n_items = snapshot.n_users, len(parts.candidates)
    graph = normalized_interactions(train_users, train_items, n_users, n_items)
    print(f"{args.data}: {n_users} users × {n_items} items, {len(train_users)} in training")
    print(f"rank {args.rank}, alpha {args.alpha}, k {k}; load average before: {_load()}")

    fitted = spectral_filter(train_users, train_items, n_users, n_items, 0, args.alpha)
    exclude = interaction_matrix(train_users, train_items, n_users, n_items)
    relevant = interaction_matrix(test_users, test_items, n_users, n_items)
    users = np.flatnonzero(np.diff(relevant.indptr))

    def judged(name: str, basis: np.ndarray, seconds: float) -> None:
        filtered = dataclasses.replace(fitted, basis=basis)
        items = spectral_top_k(filtered, k, exclude, users)
        values = ranking_metrics(items, relevant, (k,), users=users).values
        print(
            f"  {name:<24} {seconds:7.1f} s   recall@{k} {values['recall', k]:.4f}   "
            f"ndcg@{k} {values['ndcg', k]:.4f}   peak RSS so far {peak_rss_bytes() >> 20} MiB"
        )

    judged("linear filter alone", fitted.basis, 0.0)
    for q in args.power_iterations:
        started = time.perf_counter()
        found = top_singular(graph, args.rank, seed=0, power_iterations=q)
        judged(f"randomized, q={q}", found.items, time.perf_counter() - started)
    started = time.perf_counter()
    _, _, right = sla.svds(graph, k=args.rank)
    judged("scipy svds (ARPACK)", right.T.astype(np.float32), time.perf_counter() - started)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
