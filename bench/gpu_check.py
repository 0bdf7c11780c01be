"""Training and scoring on the GPU beside the CPU, on one synthetic graph (bench/gpu_check.sh).

On a generated data set (default 1M interactions: 50K users × 20K items, bench/generate.py's
generator), the same model (same seed, same batches) trains for ``--epochs`` epochs on each
device, then scores every user's top ``--k`` with the training items excluded, as a run
publishes them. Prints, per device, seconds per epoch (the first epoch, which traces the step,
apart) and seconds to score; on the GPU its peak memory against the run's memory estimate
(``recsys.memory.estimate_bytes``, host and device together, so an upper bound); then whether
the lists match:

- **same embeddings**: the CPU's embeddings scored on the GPU and on the CPU. The lists must be
  the same but for items whose scores tie within float tolerance (the verdict of this check);
- **trained apart**: each device's own model. Float rounding differs between the devices and
  grows over the steps, so this reports how far the lists drift (lists equal, overlap@k, largest
  difference of the sorted scores) rather than judging it.

The CPU runs the products on recsys's kernel where it is built (as a CPU-only run would),
the GPU on TensorFlow's. Without a GPU only the CPU is measured (and it says so).

    python bench/gpu_check.py [--interactions 1000000] [--epochs 3] [--k 20] [--tolerance 1e-4]
"""

import argparse
import time

import numpy as np
import tensorflow as tf

from recsys.data.graph import interaction_matrix, normalized_interactions
from recsys.data.sampler import BprSampler
from recsys.memory import estimate_bytes
from recsys.model.lightgcn import LightGCN, compute_device, configure_threads
from recsys.model.native_kernel import csr_kernel
from recsys.model.settings import TrainConfig
from recsys.scoring.topk import top_k_embeddings
from recsys.synthetic.interactions import default_shape, interaction_chunks, joined


def train(
    device: str, graph, users: np.ndarray, items: np.ndarray, n_items: int, epochs: int
) -> tuple[LightGCN, list[float]]:
    """The model trained on ``device`` and each epoch's seconds; the batches depend only on
    the seed, so both devices see the same ones."""
    config = TrainConfig()
    sampler = BprSampler(users, items, n_items, seed=config.seed)
    batch, steps = config.batching(sampler.n_samples)
    native = device.startswith("/CPU") and csr_kernel().available
    with tf.device(device):
        model = LightGCN.from_config(graph, config, native=native)
        seconds = []
        for _ in range(epochs):
            started = time.perf_counter()
            for _ in range(steps):
                loss = model.train_step(*sampler.batch(batch))[0]
            float(loss)  # waits for the device
            seconds.append(time.perf_counter() - started)
    return model, seconds


def score(device: str, user_emb, item_emb, k: int, exclude) -> tuple[np.ndarray, np.ndarray, float]:
    started = time.perf_counter()
    with tf.device(device):
        lists, scores = top_k_embeddings(user_emb, item_emb, k, exclude=exclude)
    return lists, scores, time.perf_counter() - started


def compare(name: str, ours: tuple, theirs: tuple, tolerance: float) -> bool:
    """Prints how two sets of lists agree; True where every difference is a tie within
    ``tolerance`` (relative to the scores' scale): the sorted scores agree position by position,
    and an item in one list but not the other scores within tolerance of the other's last."""
    (lists_a, scores_a), (lists_b, scores_b) = ours, theirs
    scale = max(float(np.nanmax(np.abs(scores_b))), 1e-12)
    same = np.all(lists_a == lists_b, axis=1)
    overlap = np.mean(
        [len(np.intersect1d(a, b)) / len(b) for a, b in zip(lists_a, lists_b, strict=True)]
    )
    gap = float(np.nanmax(np.abs(scores_a - scores_b))) / scale
    ties = True  # until a swapped item scores apart from the lists' last
    for row in np.flatnonzero(~same):
        last = min(scores_a[row, -1], scores_b[row, -1])
        swapped = np.setxor1d(lists_a[row], lists_b[row])
        edge = np.concatenate(
            [
                scores_a[row][np.isin(lists_a[row], swapped)],
                scores_b[row][np.isin(lists_b[row], swapped)],
            ]
        )
        if np.any(np.abs(edge - last) / scale > tolerance):
            ties = False
    matches = ties and gap <= tolerance
    print(
        f"  {name}: lists equal for {same.mean():.4%} of users, overlap@k {overlap:.4%}, "
        f"largest difference of sorted scores {gap:.2e} of the largest score; "
        f"differences only ties within {tolerance:g}: {'yes' if matches else 'no'}"
    )
    return matches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    configure_threads()

    n_users, n_items = default_shape(args.interactions)
    data = joined(
        interaction_chunks(args.interactions, n_users, n_items, ratings=False, timestamps=False)
    )
    users, items = data.user_id - 1, data.item_id - 1
    graph = normalized_interactions(users, items, n_users, n_items)
    exclude = interaction_matrix(users, items, n_users, n_items)
    config = TrainConfig()
    estimate = estimate_bytes(n_users, n_items, graph.nnz, len(users), config.dim)
    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"{len(users):,} interactions ({n_users:,} users × {n_items:,} items, {graph.nnz:,} "
        f"distinct), dim {config.dim}, {config.steps_per_epoch} steps an epoch; "
        f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}; "
        f"device: {compute_device()}; CPU products on {csr_kernel().description}"
    )
    devices = ["/GPU:0", "/CPU:0"] if gpus else ["/CPU:0"]
    if not gpus:
        print("no GPU visible to TensorFlow: the CPU only (nothing here says how a GPU does)")
    results = {}
    for device in devices:
        if device == "/GPU:0":
            tf.config.experimental.reset_memory_stats("GPU:0")
        model, seconds = train(device, graph, users, items, n_items, args.epochs)
        user_emb, item_emb = model.embeddings()
        lists, scores, scoring = score(device, user_emb, item_emb, args.k, exclude)
        later = seconds[1:] or seconds
        line = (
            f"{device[1:]}: {np.mean(later):.2f} s per epoch (epochs after the first; the first, "
            f"with tracing, {seconds[0]:.2f} s), scoring {n_users:,} users {scoring:.1f} s"
        )
        if device == "/GPU:0":
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
            line += (
                f"; peak GPU memory {peak / 2**30:.2f} GiB against the run's estimate "
                f"{estimate / 2**30:.2f} GiB ({peak / estimate:.0%})"
            )
        print(line)
        results[device] = (user_emb, item_emb, lists, scores)
        del model
    if not gpus:
        return 0
    cpu_users, cpu_items, cpu_lists, cpu_scores = results["/CPU:0"]
    gpu_lists_same, gpu_scores_same, _ = score("/GPU:0", cpu_users, cpu_items, args.k, exclude)
    print("published lists, GPU against CPU:")
    verdict = compare(
        "same embeddings",
        (gpu_lists_same, gpu_scores_same),
        (cpu_lists, cpu_scores),
        args.tolerance,
    )
    _, _, gpu_lists, gpu_scores = results["/GPU:0"]
    compare("trained apart", (gpu_lists, gpu_scores), (cpu_lists, cpu_scores), args.tolerance)
    gap = float(np.max(np.abs(results["/GPU:0"][0] - cpu_users)))
    print(f"  trained apart: largest difference of user embeddings {gap:.2e}")
    print(f"GPU lists match the CPU's within tolerance: {'yes' if verdict else 'NO'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
