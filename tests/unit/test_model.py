"""LightGCN propagation, gradient and loss against numpy references."""

import numpy as np
import pytest
import tensorflow as tf

from recsys.data.graph import normalized_adjacency
from recsys.model.lightgcn import LightGCN

N_USERS, N_ITEMS = 7, 9


def _graph(seed: int = 0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS - 1, 30)  # the last user stays isolated
    items = rng.integers(0, N_ITEMS, 30)
    return normalized_adjacency(users, items, N_USERS, N_ITEMS)


def _model(propagation: str = "csr", **kwargs) -> LightGCN:
    settings = {"dim": 4, "n_layers": 3, "l2": 1e-4, "learning_rate": 1e-3} | kwargs
    return LightGCN(_graph(), N_USERS, N_ITEMS, seed=3, propagation=propagation, **settings)


def test_propagation_matches_scipy_reference() -> None:
    model = _model(n_layers=3)
    adjacency = _graph().astype(np.float64)
    layer = model.embedding.numpy().astype(np.float64)
    expected = layer.copy()
    for _ in range(3):
        layer = adjacency @ layer
        expected += layer
    expected /= 4
    np.testing.assert_allclose(model.propagate().numpy(), expected, rtol=1e-5, atol=1e-6)
    users, items = model.embeddings()
    np.testing.assert_allclose(np.vstack([users, items]), expected, rtol=1e-5, atol=1e-6)


def _gradient(model: LightGCN, weights: np.ndarray) -> np.ndarray:
    with tf.GradientTape() as tape:
        objective = tf.reduce_sum(model.propagate() * weights)
    return tape.gradient(objective, model.embedding).numpy()


def test_csr_gradient_matches_coo_and_numpy() -> None:
    weights = np.random.default_rng(1).normal(size=(N_USERS + N_ITEMS, 4)).astype(np.float32)
    csr, coo = _model("csr"), _model("coo")
    np.testing.assert_allclose(_gradient(csr, weights), _gradient(coo, weights), atol=1e-6)
    adjacency = _graph().toarray().astype(np.float64)
    propagate = sum(np.linalg.matrix_power(adjacency, k) for k in range(4)) / 4
    np.testing.assert_allclose(_gradient(csr, weights), propagate.T @ weights, atol=1e-5)


def test_loss_is_bpr_plus_layer0_l2() -> None:
    model = _model(l2=0.5)
    users = np.array([0, 1, 1], np.int32)
    pos, neg = np.array([2, 3, 4], np.int32), np.array([5, 6, 0], np.int32)
    final = model.propagate().numpy()
    e0 = model.embedding.numpy()
    margin = (final[users] * (final[N_USERS + pos] - final[N_USERS + neg])).sum(axis=1)
    bpr = np.mean(-np.log(1 / (1 + np.exp(-margin))))
    squares = sum((e0[idx] ** 2).sum() for idx in (users, N_USERS + pos, N_USERS + neg))
    loss, bpr_part = model.train_step(users, pos, neg)  # value from before the update
    assert float(bpr_part) == pytest.approx(bpr, rel=1e-5)
    assert float(loss) == pytest.approx(bpr + 0.5 * squares / 2 / 3, rel=1e-5)


def test_training_lowers_loss_and_weights_round_trip() -> None:
    model = _model(learning_rate=0.05)
    batch = (
        np.array([0, 1, 2], np.int32),
        np.array([1, 2, 3], np.int32),
        np.array([4, 5, 6], np.int32),
    )
    snapshot = model.get_weights()
    first = float(model.train_step(*batch)[0])
    for _ in range(20):
        last = float(model.train_step(*batch)[0])
    assert last < first
    model.set_weights(snapshot)
    assert float(model.train_step(*batch)[0]) == pytest.approx(first)


def test_rejects_mismatched_graph() -> None:
    with pytest.raises(ValueError):
        LightGCN(_graph(), N_USERS + 1, N_ITEMS, dim=4, n_layers=1, l2=0.0, learning_rate=0.1)
