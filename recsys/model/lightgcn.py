"""LightGCN (He et al., SIGIR 2020) in TensorFlow, trained with BPR.

Public API:
    configure_threads(intra_op=None, inter_op=1) -> None; call before any other TensorFlow use
    LightGCN(adjacency, n_users, n_items, *, dim, n_layers, l2, learning_rate,
             seed=0, propagation="csr")        (defaults live in train.TrainConfig)
        .train_step(users, positives, negatives) -> (loss, bpr_loss) tensors; one Adam step
        .propagate()                              -> tf.Tensor [n_users+n_items, dim]
        .embeddings()                             -> (user_emb, item_emb) float32 numpy
        .get_weights() / .set_weights(weights)    -> layer-0 table + optimiser state snapshot
        .learning_rate                            -> tf.Variable, assign to schedule the rate

The only trainable parameters are the layer-0 embeddings of users and items, kept in one
table ordered like the graph (users first). Propagation is E^{k+1} = Â E^k for K layers and
the final embedding is the mean of E^0..E^K; a score is the dot product of final
embeddings. Propagation runs through ``sparse_csr_matrix_ops.matmul`` on a
``CSRSparseMatrix``: a training epoch is 12-16x faster on 2 CPU cores than with
``tf.sparse.sparse_dense_matmul`` on a COO ``SparseTensor`` (bench/train_speed.py, the
only user of ``propagation="coo"``).
"""

import os
from typing import Literal

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops as csr_ops

from recsys.model.settings import TrainConfig

Propagation = Literal["csr", "coo"]

_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8


def configure_threads(intra_op: int | None = None, inter_op: int = 1) -> None:
    """Pin TensorFlow's thread pools (intra-op default: the CPUs this process may use).

    Intra-op threads parallelise the CSR matmul (2 threads halve its wall time); a step is a
    chain of dependent ops, so one inter-op thread suffices and a second only competes for
    the cores (measured 5-10% slower). Pinning also keeps TF from sizing its pools by a
    host's CPU count when a container grants fewer cores. Once TensorFlow has run anything
    its pools are fixed; a later call then leaves them as they are.
    """
    if intra_op is None:
        intra_op = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # "cannot be modified after initialization"
        pass


def _sparse_tensor(adjacency: sp.csr_matrix) -> tf.SparseTensor:
    coo = adjacency.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    tensor = tf.SparseTensor(indices, coo.data.astype(np.float32), coo.shape)
    return tf.sparse.reorder(tensor)


def _csr_symmetric_matmul(matrix: csr_ops.CSRSparseMatrix):
    """Â·x with the gradient Âᵀ·g computed as Â·g, since Â is symmetric.

    The registered gradient of ``csr_ops.matmul`` multiplies by the transpose, which costs
    an extra pass; reusing the same matrix makes a training step about 15% faster.
    """

    @tf.custom_gradient
    def matmul(x: tf.Tensor):
        def grad(upstream: tf.Tensor) -> tf.Tensor:
            return csr_ops.matmul(matrix, upstream)

        return csr_ops.matmul(matrix, x), grad

    return matmul


class LightGCN(tf.Module):
    """LightGCN embeddings over a fixed normalised graph, with its own Adam optimiser.

    ``adjacency`` must be the symmetric normalised matrix from ``graph.normalized_adjacency``.
    Layer-0 embeddings start as N(0, 0.1²) (the paper's reference code) drawn from a numpy
    Generator seeded with ``seed``, so initialisation is reproducible.
    """

    @classmethod
    def from_config(
        cls,
        adjacency: sp.csr_matrix,
        n_users: int,
        n_items: int,
        config: TrainConfig,
        propagation: Propagation = "csr",
    ) -> "LightGCN":
        """The model a :class:`TrainConfig` describes (its size, L2, rate and seed)."""
        return cls(
            adjacency,
            n_users,
            n_items,
            dim=config.dim,
            n_layers=config.n_layers,
            l2=config.l2,
            learning_rate=config.learning_rate,
            seed=config.seed,
            propagation=propagation,
        )

    def __init__(
        self,
        adjacency: sp.csr_matrix,
        n_users: int,
        n_items: int,
        *,
        dim: int,
        n_layers: int,
        l2: float,
        learning_rate: float,
        seed: int = 0,
        propagation: Propagation = "csr",
    ) -> None:
        super().__init__(name="lightgcn")
        n_nodes = n_users + n_items
        if adjacency.shape != (n_nodes, n_nodes):
            raise ValueError(f"adjacency is {adjacency.shape}, expected {(n_nodes, n_nodes)}")
        self.n_users, self.n_items, self.n_layers = n_users, n_items, n_layers
        self._l2 = tf.constant(l2, tf.float32)
        self.learning_rate = tf.Variable(learning_rate, dtype=tf.float32, trainable=False)
        init = np.random.default_rng(seed).normal(0.0, 0.1, (n_nodes, dim)).astype(np.float32)
        self.embedding = tf.Variable(init, name="embedding_0")
        self._m = tf.Variable(tf.zeros_like(init), trainable=False)
        self._v = tf.Variable(tf.zeros_like(init), trainable=False)
        self._t = tf.Variable(0.0, trainable=False)
        sparse = _sparse_tensor(adjacency)
        if propagation == "csr":
            self._matmul = _csr_symmetric_matmul(csr_ops.CSRSparseMatrix(sparse))
        elif propagation == "coo":
            self._matmul = lambda x: tf.sparse.sparse_dense_matmul(sparse, x)
        else:
            raise ValueError(f"unknown propagation {propagation!r}")
        spec = tf.TensorSpec([None], tf.int32)
        self.train_step = tf.function(self._train_step, input_signature=[spec, spec, spec])

    def propagate(self) -> tf.Tensor:
        """Final embeddings of all nodes: mean over layers 0..K of Â^k E^0."""
        layer = self.embedding
        total = layer
        for _ in range(self.n_layers):
            layer = self._matmul(layer)
            total = total + layer
        return total / float(self.n_layers + 1)

    def _loss(
        self, users: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        final = self.propagate()
        item_offset = self.n_users
        e_user = tf.gather(final, users)
        e_pos = tf.gather(final, positives + item_offset)
        e_neg = tf.gather(final, negatives + item_offset)
        margin = tf.reduce_sum(e_user * (e_pos - e_neg), axis=1)
        bpr = tf.reduce_mean(tf.nn.softplus(-margin))  # -log σ(pos - neg), overflow-safe
        e0 = [
            tf.gather(self.embedding, users),
            tf.gather(self.embedding, positives + item_offset),
            tf.gather(self.embedding, negatives + item_offset),
        ]
        squared = tf.add_n([tf.reduce_sum(tf.square(e)) for e in e0])
        batch = tf.cast(tf.shape(users)[0], tf.float32)
        return bpr + self._l2 * squared / 2.0 / batch, bpr

    def _train_step(
        self, users: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss, bpr = self._loss(users, positives, negatives)
        grad = tf.convert_to_tensor(tape.gradient(loss, self.embedding))
        self._adam(grad)
        return loss, bpr

    def _adam(self, grad: tf.Tensor) -> None:
        """Dense Adam update: the propagated gradient touches every row anyway."""
        t = self._t.assign_add(1.0)
        m = self._m.assign(_BETA1 * self._m + (1.0 - _BETA1) * grad)
        v = self._v.assign(_BETA2 * self._v + (1.0 - _BETA2) * tf.square(grad))
        step = self.learning_rate * tf.sqrt(1.0 - _BETA2**t) / (1.0 - _BETA1**t)
        self.embedding.assign_sub(step * m / (tf.sqrt(v) + _EPSILON))

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Final (propagated) user and item embeddings as float32 numpy arrays."""
        final = self.propagate().numpy()
        return final[: self.n_users], final[self.n_users :]

    def get_weights(self) -> list[np.ndarray]:
        """Copy of every variable (embeddings and Adam state), for restoring a best epoch."""
        return [v.numpy() for v in (self.embedding, self._m, self._v, self._t)]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for variable, value in zip(
            (self.embedding, self._m, self._v, self._t), weights, strict=True
        ):
            variable.assign(value)
