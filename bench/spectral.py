"""The GF-CF baseline's cost and quality at several ranks and weights of its low-pass filter:
the SVD's seconds (recsys/data/spectrum.py) and the filter's recall@k and NDCG@k on one split,
beside the linear filter alone, with peak RSS.

    python bench/spectral.py [--data ml100k|amazon|synthetic] [--ranks 64 256] [--size N]
        [--alphas 0.3 1.0]

The split and the judging are bench/quality.py's (the pipeline's holdout and evaluation). The
randomized SVD it was measured against (recsys/data/spectrum.py's docstring has the figures)
was this bench's other column until the commit that replaced it by ARPACK.
"""

import argparse
import dataclasses
import time

import numpy as np
from quality import DATA, REPO, _load, _snapshot, _split

from recsys.data.graph import interaction_matrix, normalized_interactions
from recsys.data.holdout import holdout
from recsys.data.spectrum import top_singular
from recsys.evaluation.evaluate import holdout_sets
from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.spectral import spectral_filter, spectral_top_k
from recsys.memory import peak_rss_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATA, default="amazon")
    parser.add_argument("--size", type=int, default=500_000, help="synthetic interactions")
    parser.add_argument("--ranks", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.3, 1.0])
    args = parser.parse_args()
    where, test_ratio, seeds, k = DATA[args.data]
    snapshot = _snapshot(args.data, REPO.parent / "shared" / "data" / str(where), args.size)
    parts = holdout(snapshot, _split(test_ratio, seeds[0]))
    train_users, train_items, test_users, test_items = holdout_sets(snapshot, parts)
    n_users, n_items = snapshot.n_users, len(parts.candidates)
    graph = normalized_interactions(train_users, train_items, n_users, n_items)
    print(f"{args.data}: {n_users} users × {n_items} items, {len(train_users)} in training")
    print(f"k {k}; load average before: {_load()}")

    fitted = spectral_filter(train_users, train_items, n_users, n_items, 0)
    exclude = interaction_matrix(train_users, train_items, n_users, n_items)
    relevant = interaction_matrix(test_users, test_items, n_users, n_items)
    users = np.flatnonzero(np.diff(relevant.indptr))

    def judged(name: str, basis: np.ndarray, seconds: float, alpha: float = 0.0) -> None:
        filtered = dataclasses.replace(fitted, basis=basis, alpha=alpha)
        items = spectral_top_k(filtered, k, exclude, users)
        values = ranking_metrics(items, relevant, (k,), users=users).values
        print(
            f"  {name:<24} {seconds:7.1f} s   recall@{k} {values['recall', k]:.4f}   "
            f"ndcg@{k} {values['ndcg', k]:.4f}   peak RSS so far {peak_rss_bytes() >> 20} MiB"
        )

    judged("linear filter alone", fitted.basis, 0.0)
    for rank in args.ranks:
        started = time.perf_counter()
        basis = top_singular(graph, rank).items
        seconds = time.perf_counter() - started
        for alpha in args.alphas:
            judged(f"rank {rank}, alpha {alpha:g}", basis, seconds, alpha)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
