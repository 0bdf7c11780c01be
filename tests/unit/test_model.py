"""LightGCN propagation, loss and training step against dense references of the paper's model."""

import numpy as np
import pytest
import tensorflow as tf

from recsys.data.graph import normalized_interactions
from recsys.data.sampler import BprSampler
from recsys.model import lightgcn
from recsys.model.lightgcn import BlockedProduct, LightGCN
from recsys.model.native_kernel import CsrKernel
from tests.conftest import require_native_kernel

N_USERS, N_ITEMS, DIM = 7, 9, 4


def _graph(seed: int = 0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS - 1, 30)  # the last user stays isolated
    items = rng.integers(0, N_ITEMS, 30)
    return normalized_interactions(users, items, N_USERS, N_ITEMS)


def _model(**kwargs) -> LightGCN:
    settings = {"dim": DIM, "n_layers": 3, "l2": 1e-4, "learning_rate": 1e-3} | kwargs
    return LightGCN(_graph(), seed=3, **settings)


def _propagation(n_layers: int = 3) -> np.ndarray:
    """P = mean of Â^0..Â^K over the full (users + items)² adjacency, in float64."""
    block = _graph().toarray().astype(np.float64)
    adjacency = np.block(
        [[np.zeros((N_USERS, N_USERS)), block], [block.T, np.zeros((N_ITEMS, N_ITEMS))]]
    )
    return sum(np.linalg.matrix_power(adjacency, k) for k in range(n_layers + 1)) / (n_layers + 1)


def _layer0(model: LightGCN) -> np.ndarray:
    return np.vstack([model.users.numpy(), model.items.numpy()]).astype(np.float64)


def _reference_loss(table: tf.Tensor, batch, l2: float) -> tuple[tf.Tensor, tf.Tensor]:
    """The paper's loss written plainly on the full graph, for tf.GradientTape."""
    users, pos, neg = batch
    final = tf.constant(_propagation()) @ table
    e_user = tf.gather(final, users)
    margin = tf.reduce_sum(
        e_user * (tf.gather(final, N_USERS + pos) - tf.gather(final, N_USERS + neg)), 1
    )
    bpr = tf.reduce_mean(-tf.math.log(tf.sigmoid(margin)))
    rows = np.concatenate([users, N_USERS + pos, N_USERS + neg])
    squared = tf.reduce_sum(tf.square(tf.gather(table, rows)))
    return bpr + l2 * squared / 2 / len(users), bpr


BATCH = (
    np.array([0, 1, 1, 5], np.int32),
    np.array([2, 3, 4, 2], np.int32),
    np.array([5, 6, 0, 8], np.int32),
)


@pytest.fixture(params=["one block", "blocks of 2 rows"])
def blocking(request, monkeypatch) -> None:
    """Runs a test on products of one block (as these small tables are) and cut into blocks of
    two rows of the gathered table (as large tables are)."""
    if request.param != "one block":
        monkeypatch.setattr(lightgcn, "BLOCK_BYTES", 2 * 4 * DIM)
        monkeypatch.setattr(lightgcn, "NATIVE_BLOCK_BYTES", 2 * 4 * DIM)


@pytest.fixture(params=["recsys kernel", "TensorFlow kernel"])
def kernel(request, monkeypatch) -> None:
    """Runs a test with products on recsys's CSR kernel and on TensorFlow's."""
    if request.param == "TensorFlow kernel":
        monkeypatch.setattr(lightgcn, "csr_kernel", lambda: CsrKernel(None, "TensorFlow's"))
    elif not lightgcn.csr_kernel().available:
        require_native_kernel()


@pytest.mark.usefixtures("blocking", "kernel")
def test_propagation_matches_dense_reference() -> None:
    model = _model()
    expected = _propagation() @ _layer0(model)
    users, items = model.embeddings()
    np.testing.assert_allclose(np.vstack([users, items]), expected, rtol=1e-5, atol=1e-6)
    assert np.all(users[N_USERS - 1] == model.users.numpy()[N_USERS - 1] / 4)  # isolated user


def test_loss_is_bpr_plus_layer0_l2() -> None:
    model = _model(l2=0.5)
    expected_loss, expected_bpr = _reference_loss(tf.constant(_layer0(model)), BATCH, 0.5)
    loss, bpr = model.train_step(*BATCH)  # values from before the update
    assert float(bpr) == pytest.approx(float(expected_bpr), rel=1e-5)
    assert float(loss) == pytest.approx(float(expected_loss), rel=1e-5)


@pytest.mark.usefixtures("blocking", "kernel")
def test_steps_follow_adam_on_the_reference_gradient() -> None:
    """Three steps of the model against Adam in numpy on tf.GradientTape's gradient of the
    plain full-graph loss: the hand-written backward pass and the fused update together."""
    rate, l2 = 0.01, 0.3
    model = _model(l2=l2, learning_rate=rate)
    table = _layer0(model)
    m, v = np.zeros_like(table), np.zeros_like(table)
    for t in range(1, 4):
        variable = tf.Variable(table)
        with tf.GradientTape() as tape:
            loss, _ = _reference_loss(variable, BATCH, l2)
        grad = tape.gradient(loss, variable).numpy()
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        table = table - rate * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-8)
        model.train_step(*BATCH)
        np.testing.assert_allclose(_layer0(model), table, rtol=1e-4, atol=1e-6)


@pytest.mark.usefixtures("kernel")
def test_models_built_alike_take_identical_steps() -> None:
    """Bit for bit, as runs with and without Ray workers beside them must. An AddN that the graph
    optimiser once made of running sums broke this (its order of addition varies from one build
    to the next); it showed on a graph of this size, not on the small one above."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 122, 2354), rng.integers(0, 150, 2354)
    graph = normalized_interactions(users, items, 122, 150)
    batch = BprSampler(users, items, 150, np.random.default_rng(1)).batch(148)
    weights = []
    for _ in range(6):
        model = LightGCN(graph, dim=16, n_layers=2, l2=1e-3, learning_rate=0.1, seed=0)
        model.train_step(*batch)
        weights.append(model.get_weights())
    for other in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], other, strict=True))


def test_training_lowers_loss_and_weights_round_trip() -> None:
    model = _model(learning_rate=0.05)
    snapshot = model.get_weights()
    first = float(model.train_step(*BATCH)[0])
    for _ in range(20):
        last = float(model.train_step(*BATCH)[0])
    assert last < first
    model.set_weights(snapshot)
    assert float(model.train_step(*BATCH)[0]) == pytest.approx(first)


@pytest.mark.usefixtures("kernel")
def test_blocked_product_cuts_large_tables_and_sums_to_the_product() -> None:
    matrix = _graph().T.tocsr()  # items × users
    table = tf.constant(np.random.default_rng(1).normal(size=(N_USERS, DIM)), tf.float32)
    whole = BlockedProduct(matrix, DIM)
    blocked = BlockedProduct(matrix, DIM, block_bytes=3 * 4 * DIM)
    assert len(whole.blocks) == 1
    assert len(blocked.blocks) == 3  # 7 rows of the table, at most 3 a block
    assert np.diff(blocked.edges).max() <= 3
    expected = matrix.toarray() @ table.numpy()
    np.testing.assert_allclose(whole(table).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blocked(table).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(blocked(table).numpy(), blocked(table).numpy())
