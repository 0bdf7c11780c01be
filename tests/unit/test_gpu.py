"""Training and scoring on a GPU, where TensorFlow sees one: they run there and agree with the CPU.

Skipped elsewhere (CI and these 2-core machines have no GPU; ``tensorflow-cpu`` sees none).
"""

import numpy as np
import pytest
import tensorflow as tf

from recsys.data.graph import normalized_interactions
from recsys.data.sampler import BprSampler
from recsys.model.lightgcn import LightGCN, compute_device
from recsys.scoring.topk import top_k_embeddings

pytestmark = pytest.mark.skipif(
    not tf.config.list_physical_devices("GPU"),
    reason="TensorFlow sees no GPU on this machine (tensorflow-cpu, or no CUDA device)",
)


def _trained(device: str) -> tuple[LightGCN, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 300, 4000), rng.integers(0, 200, 4000)
    sampler = BprSampler(users, items, 200, seed=1)
    with tf.device(device):
        model = LightGCN(
            normalized_interactions(users, items, 300, 200),
            dim=16,
            n_layers=3,
            l2=1e-3,
            learning_rate=0.01,
            seed=2,
        )
        for _ in range(5):
            model.train_step(*sampler.batch(512))
        user_emb, item_emb = model.embeddings()
    return model, user_emb, item_emb


def test_training_and_scoring_run_on_the_gpu_and_match_the_cpu() -> None:
    assert compute_device().startswith("GPU:0")
    gpu_model, gpu_users, gpu_items = _trained("/GPU:0")
    assert "GPU" in gpu_model.users.device and "GPU" in gpu_model.propagate()[0].device
    _, cpu_users, cpu_items = _trained("/CPU:0")
    np.testing.assert_allclose(gpu_users, cpu_users, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu_items, cpu_items, rtol=1e-3, atol=1e-5)
    with tf.device("/GPU:0"):
        gpu_top, _ = top_k_embeddings(gpu_users, gpu_items, 10)
    cpu_top, _ = top_k_embeddings(gpu_users, gpu_items, 10)
    assert (gpu_top == cpu_top).mean() > 0.99  # float ties may order differently
