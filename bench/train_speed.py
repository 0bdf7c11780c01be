"""Training speed: today's step against the old one and the bare products, and epochs at scale.

Part 1, on one synthetic graph the size of a real 1M-interaction data set (default 30K users ×
41K items, 810K training interactions, ~71K nodes, ~1.6M adjacency entries), in one process:
  - the bare sparse products a 3-layer step contains (6 CSR matmuls of the full adjacency),
  - the step before this change (``TapeStep`` below: full-adjacency propagation, gradient by
    tf.GradientTape, Adam as elementwise ops), at batch 4096,
  - the step of ``recsys.model.lightgcn`` at batch 4096 and at the default batch
    (training interactions ÷ steps per epoch),
with the ratios and the triples a second each step trains (a larger batch is more work per step).
Part 2: seconds per epoch with the default settings at several data sizes (default 1M, 5M and
20M interactions), timed over a whole epoch after one traced step, and the largest ÷ smallest
epoch time against the ratio of their interactions. Above 32 MiB a gathered table is read in
column blocks (``recsys.model.lightgcn.BlockedProduct``); the 810K graph's tables are smaller.
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` before the command backs TensorFlow's tables with huge
pages (fewer TLB misses in the gathers).

    python bench/train_speed.py [--sizes 1000000 5000000 20000000] [--repeats 10]
"""

import argparse
import os
import resource
import time

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops as csr_ops

from recsys.data.graph import normalized_interactions
from recsys.data.sampler import BprSampler
from recsys.model.lightgcn import LightGCN, configure_threads, csr_matrix
from recsys.model.native_kernel import csr_kernel
from recsys.model.settings import TrainConfig
from recsys.synthetic.interactions import default_shape, interaction_chunks, joined

OLD_BATCH = 4096


class TapeStep(tf.Module):
    """The training step this change replaced, kept as the reference: E⁰ as one table over the
    full (users + items)² adjacency, the gradient from tf.GradientTape (through a custom CSR
    gradient), and Adam as separate elementwise ops over the whole table."""

    def __init__(self, adjacency: sp.csr_matrix, n_users: int, config: TrainConfig) -> None:
        super().__init__()
        rng = np.random.default_rng(config.seed)
        init = rng.normal(0.0, 0.1, (adjacency.shape[0], config.dim)).astype(np.float32)
        self.table = tf.Variable(init)
        self.m, self.v = tf.Variable(tf.zeros_like(init)), tf.Variable(tf.zeros_like(init))
        self.t, self.n_users, self.layers, self.l2 = (
            tf.Variable(0.0),
            n_users,
            config.n_layers,
            config.l2,
        )
        self.rate = config.learning_rate
        matrix = csr_matrix(adjacency)

        @tf.custom_gradient
        def matmul(x: tf.Tensor):
            return csr_ops.matmul(matrix, x), lambda g: csr_ops.matmul(matrix, g)

        self.matmul = matmul
        spec = tf.TensorSpec([None], tf.int32)
        self.step = tf.function(self._step, input_signature=[spec, spec, spec])

    def _step(self, users: tf.Tensor, pos: tf.Tensor, neg: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            layer = total = self.table
            for _ in range(self.layers):
                layer = self.matmul(layer)
                total = total + layer
            final = total / float(self.layers + 1)
            rows = [users, pos + self.n_users, neg + self.n_users]
            e_user, e_pos, e_neg = (tf.gather(final, r) for r in rows)
            bpr = tf.reduce_mean(tf.nn.softplus(-tf.reduce_sum(e_user * (e_pos - e_neg), 1)))
            squared = tf.add_n([tf.reduce_sum(tf.square(tf.gather(self.table, r))) for r in rows])
            loss = bpr + self.l2 * squared / 2.0 / tf.cast(tf.shape(users)[0], tf.float32)
        grad = tf.convert_to_tensor(tape.gradient(loss, self.table))
        t = self.t.assign_add(1.0)
        m = self.m.assign(0.9 * self.m + 0.1 * grad)
        v = self.v.assign(0.999 * self.v + 0.001 * tf.square(grad))
        step = self.rate * tf.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
        self.table.assign_sub(step * m / (tf.sqrt(v) + 1e-8))
        return loss


def full_adjacency(block: sp.csr_matrix) -> sp.csr_matrix:
    """[[0, R̂], [R̂ᵀ, 0]]: the symmetric-normalised adjacency the old step propagated over."""
    full = sp.bmat([[None, block], [block.T, None]], format="csr", dtype=np.float32)
    full.sort_indices()
    return full


def _median_ms(run, repeats: int) -> float:
    run()  # trace and warm up
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def indices(n_interactions: int, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The scale generator's interactions as 0-based user and item indices."""
    chunks = interaction_chunks(n_interactions, n_users, n_items, ratings=False, timestamps=False)
    data = joined(chunks)
    return data.user_id - 1, data.item_id - 1


def step_times(n_users: int, n_items: int, n_interactions: int, repeats: int) -> None:
    users, items = indices(n_interactions, n_users, n_items)
    block = normalized_interactions(users, items, n_users, n_items)
    full = full_adjacency(block)
    config = TrainConfig()
    sampler = BprSampler(users, items, n_items, seed=0)
    default_batch, _ = config.batching(sampler.n_samples)
    print(f"sparse products of the new step: {csr_kernel().description}")
    print(
        f"step times: {n_users:,} users × {n_items:,} items, {sampler.n_samples:,} interactions, "
        f"{full.shape[0]:,} nodes, {full.nnz:,} adjacency entries, dim {config.dim}, "
        f"{config.n_layers} layers"
    )
    matrix = csr_matrix(full)
    table = tf.constant(
        np.random.default_rng(0).normal(size=(full.shape[0], config.dim)), tf.float32
    )

    @tf.function
    def bare(x: tf.Tensor) -> tf.Tensor:
        for _ in range(2 * config.n_layers):
            x = csr_ops.matmul(matrix, x)
        return x[:1]

    old = TapeStep(full, n_users, config)
    new = LightGCN.from_config(block, config)
    new_tf = LightGCN.from_config(block, config, native=False)
    small, big = sampler.batch(OLD_BATCH), sampler.batch(default_batch)
    figures = {
        f"bare products ({2 * config.n_layers} CSR matmuls, full adjacency)": _median_ms(
            lambda: bare(table).numpy(), repeats
        ),
        f"old step, batch {OLD_BATCH}": _median_ms(lambda: float(old.step(*small)), repeats),
        f"new step, batch {OLD_BATCH}, TensorFlow's CSR kernel": _median_ms(
            lambda: float(new_tf.train_step(*small)[0]), repeats
        ),
        f"new step, batch {OLD_BATCH}": _median_ms(
            lambda: float(new.train_step(*small)[0]), repeats
        ),
        f"new step, default batch {default_batch:,}": _median_ms(
            lambda: float(new.train_step(*big)[0]), repeats
        ),
    }
    bare_ms, old_ms = list(figures.values())[:2]
    triples = [None, OLD_BATCH, OLD_BATCH, OLD_BATCH, default_batch]
    for (name, ms), batch in zip(figures.items(), triples, strict=True):
        rate = f"  {batch / ms * 1000:11,.0f} triples/s" if batch else ""
        print(
            f"  {name:58s} {ms:8.1f} ms  {ms / bare_ms:5.2f}× bare  "
            f"{old_ms / ms:5.2f}× faster than old{rate}"
        )


def epoch_times(sizes: list[int]) -> None:
    config = TrainConfig()
    print(
        f"\nseconds per epoch, defaults ({config.steps_per_epoch} steps/epoch, "
        "batch = interactions ÷ steps):"
    )
    measured = []
    for n_interactions in sizes:
        n_users, n_items = default_shape(n_interactions)
        users, items = indices(n_interactions, n_users, n_items)
        sampler = BprSampler(users, items, n_items, seed=0)
        model = LightGCN.from_config(
            normalized_interactions(users, items, n_users, n_items), config
        )
        batch, steps = config.batching(sampler.n_samples)
        float(model.train_step(*sampler.batch(batch))[0])  # trace
        started = time.perf_counter()
        for _ in range(steps):
            loss = model.train_step(*sampler.batch(batch))[0]
        float(loss)
        seconds = time.perf_counter() - started
        measured.append((sampler.n_samples, seconds))
        print(
            f"  {sampler.n_samples:>11,} interactions ({n_users:,} users × {n_items:,} items), "
            f"batch {batch:,}: {seconds:7.1f} s/epoch, {seconds / steps:.2f} s/step; "
            f"peak RSS {_peak_rss_gib():.2f} GiB"
        )
    (small_n, small_s), (large_n, large_s) = measured[0], measured[-1]
    print(
        f"  largest ÷ smallest: epoch {large_s / small_s:.1f}×, interactions "
        f"{large_n / small_n:.1f}× → {large_s / small_s / (large_n / small_n):.2f} of linear "
        "(target ≤ 1.2)"
    )


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="30000,41000,810000", help="users,items,interactions")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of each step")
    args = parser.parse_args()
    configure_threads()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    step_times(*map(int, args.graph.split(",")), args.repeats)
    if args.sizes:
        epoch_times(args.sizes)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
