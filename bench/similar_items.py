"""Similar items for a large catalogue: 100K items at dim 64 by default.

Runs what every run does to write ``similar_items``
(recsys.scoring.similar_items.similar_item_rows: the unit item table scored against itself a
chunk of items at a time, top-k in TensorFlow), on random embeddings, without the COPY; prints the
seconds, the rows, the chunks, this process's peak RSS and the load average (other work on the
machine adds to the seconds).

    python bench/similar_items.py [--items 100000] [--dim 64] [--k 10]
"""

import argparse
import os
import time

import numpy as np

from recsys.memory import peak_rss_bytes
from recsys.scoring.similar_items import similar_item_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    ids = np.arange(1, args.items + 1, dtype=np.int64)
    before = peak_rss_bytes()
    started = time.perf_counter()
    rows = chunks = 0
    for columns in similar_item_rows(ids, embeddings, args.k):
        rows += len(columns[0])
        chunks += 1
    seconds = time.perf_counter() - started
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.items:,} items, dim {args.dim}, k {args.k}: {rows:,} rows in {chunks} chunks,"
        f" {seconds:.1f} s; peak RSS {peak_rss_bytes() >> 20} MiB ({before >> 20} MiB before);"
        f" load average {load}"
    )


if __name__ == "__main__":
    main()
