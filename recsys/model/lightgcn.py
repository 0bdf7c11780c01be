"""LightGCN (He et al., SIGIR 2020) in TensorFlow, trained with BPR.

Public API:
    configure_threads(intra_op=None, inter_op=1) -> None; call before any other TensorFlow use
    compute_device() -> str, where the model's arithmetic runs ("GPU:0 (name)" or "CPU")
    device_description() -> str, that device as a run reports it (the CPU's with its CSR kernel)
    BlockedProduct(matrix, dim, block_bytes=None, native=None)  (table) -> matrix @ table, blocked
    LightGCN(interactions, *, dim, n_layers, l2, learning_rate, seed=0, negative_candidates=1,
             initial=None, native=None)
        .train_step(users, positives, negatives) -> (loss, bpr_loss) tensors; one Adam step;
            with c negative candidates, negatives is (batch, c) and the best-scored of c is used
        .propagate()                              -> (user_final, item_final) tensors
        .embeddings()                             -> (user_emb, item_emb) float32 numpy
        .get_weights() / .set_weights(weights)    -> layer-0 tables + optimiser state snapshot
        .learning_rate                            -> tf.Variable, assign to schedule the rate

The only trainable parameters are the layer-0 embeddings of users and items. With Â the
symmetric-normalised adjacency of the bipartite graph, the final embeddings are
P E⁰ with P = (I + Â + … + Â^K) / (K + 1), and a score is the dot product of final embeddings.

A step is written out by hand rather than through ``tf.GradientTape``, because the model's
structure makes the gradient cheap to state and the tape's version is wasteful:
- Â = [[0, R̂], [R̂ᵀ, 0]], so a layer is two CSR products, R̂·E_items and R̂ᵀ·E_users, each
  gathering rows of one side's table (graph.py says why that is faster than the full matrix).
- P is symmetric, so the gradient with respect to E⁰ is P applied to the gradient with
  respect to the final embeddings: the backward pass is the forward propagation again,
  and needs no stored layers. The BPR gradient of the batch rows has a closed form.
- Adam runs as TensorFlow's fused ``ResourceApplyAdam`` (one pass over each table) instead
  of a chain of elementwise ops that each read and write the whole table.
On the CPU products run through recsys's own CSR kernel (``native_kernel``: 1.7× TensorFlow's
on the 810K graph) where it could be built; on a GPU, and where it could not, through
``sparse_csr_matrix_ops.matmul`` on ``CSRSparseMatrix`` (``native=False`` chooses that on the CPU
too). bench/train_speed.py measures the step against the tape-based one, against the bare
products and with either kernel.

A product whose gathered table outgrows the CPU's caches is cut into column blocks
(:class:`BlockedProduct`): each nonzero gathers a random row of the table, and once the table
is far larger than the last-level cache nearly every gather is a miss to memory. Summing the
products of column blocks small enough to stay cached does the same arithmetic in a fixed order
(so results stay deterministic, unlike a scatter into the smaller table) at the price of one
more pass over the output per block. At 20M interactions (1M users × 100K items), on
TensorFlow's kernel, R̂ᵀ·E_users over 8 blocks of the 256 MB user table took 277 ms against
539 ms as one product (median, quiet machine); blocks of 16-64 MiB measured alike, 8 MiB ones
slower. recsys's kernel wants smaller blocks: R̂ᵀ·E_users took 301 ms as one product, 152 ms
in 32 MiB blocks and 115-119 ms in 8 MiB ones, R̂·E_items (25.6 MB) 134 ms whole and 117-123 ms
in 4 blocks of 8 MiB; at 1M interactions 8 MiB blocks measured as well as 4-32 MiB ones.
"""

import os

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops as csr_ops

from recsys.model.native_kernel import csr_kernel
from recsys.model.settings import TrainConfig
from recsys.model.warm_start import InitialState

_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8
#: Largest slice of a gathered table a product reads at once (see BlockedProduct), on
#: TensorFlow's kernel and on recsys's.
BLOCK_BYTES = 32 * 2**20
NATIVE_BLOCK_BYTES = 8 * 2**20


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


def compute_device() -> str:
    """The device TensorFlow places the model on: the first GPU it sees, else the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return f"GPU:0 ({name})" if name else "GPU:0"


def device_description() -> str:
    """:func:`compute_device`, the CPU's with the kernel its sparse products run on."""
    device = compute_device()
    return f"CPU, sparse products on {csr_kernel().description}" if device == "CPU" else device


def csr_matrix(matrix: sp.csr_matrix) -> csr_ops.CSRSparseMatrix:
    """A scipy CSR matrix as TensorFlow's CSRSparseMatrix (float32).

    With its indices sorted, scipy's COO form is already in the row-major order the conversion
    needs, so no ``tf.sparse.reorder`` (a sort of every entry: minutes at 40M entries) is done.
    """
    matrix = matrix.tocsr(copy=True)
    matrix.sort_indices()
    coo = matrix.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    return csr_ops.CSRSparseMatrix(tf.SparseTensor(indices, coo.data.astype(np.float32), coo.shape))


class BlockedProduct:
    """``matrix @ table`` as a sum over column blocks of ``matrix`` whose rows of ``table`` (of
    ``dim`` float32 columns) take at most ``block_bytes`` each; one block where the whole table
    fits. The blocks' order is fixed, so the sum is the same on every call.

    On the CPU each block runs through recsys's own kernel where it could be built
    (``native_kernel``; ``native=False`` chooses TensorFlow's), elsewhere through TensorFlow's
    CSR product. Either has a gradient, so a product can be taped on its own. A table whose
    rows are not the matrix's columns is refused (ValueError where its shape is known when the
    product is traced; the kernel's InvalidArgument where a column falls outside it)."""

    def __init__(
        self,
        matrix: sp.spmatrix,
        dim: int,
        block_bytes: int | None = None,
        native: bool | None = None,
    ) -> None:
        if native is None:
            native = compute_device() == "CPU" and csr_kernel().available
        self._kernel = csr_kernel() if native else None
        self.shape = matrix.shape
        n_cols = matrix.shape[1]
        block_bytes = block_bytes or (NATIVE_BLOCK_BYTES if native else BLOCK_BYTES)
        rows_per_block = max(1, block_bytes // (4 * dim))
        n_blocks = max(1, -(-n_cols // rows_per_block))
        self.edges = np.linspace(0, n_cols, n_blocks + 1).astype(np.int64)
        blocks = [matrix.tocsr()]
        if n_blocks > 1:
            matrix = matrix.tocsc()
            blocks = [matrix[:, start:stop].tocsr() for start, stop in self.windows]
        if self._kernel is None:
            self.blocks = [csr_matrix(block) for block in blocks]
        else:
            # The kernel reads the whole table, so a block keeps its columns' global numbers.
            self.blocks = [
                _csr_parts(block, start)
                for block, (start, _) in zip(blocks, self.windows, strict=True)
            ]

    @property
    def windows(self) -> list[tuple[int, int]]:
        """Each block's columns as [start, stop)."""
        return list(zip(self.edges[:-1].tolist(), self.edges[1:].tolist(), strict=True))

    def __call__(self, table: tf.Tensor, addend: tf.Tensor | None = None) -> tf.Tensor:
        """``addend + matrix @ table``, the blocks added in their order."""
        rows = table.shape[0]
        if rows is not None and rows != self.shape[1]:
            raise ValueError(f"a table of {rows} rows for a matrix of {self.shape[1]} columns")
        total = addend
        for block, (start, stop) in zip(self.blocks, self.windows, strict=True):
            if self._kernel is not None:
                total = self._kernel.matmul(*block, table, total)
                continue
            part = csr_ops.matmul(block, table if len(self.blocks) == 1 else table[start:stop])
            total = part if total is None else total + part
        return total


def _csr_parts(matrix: sp.csr_matrix, column_offset: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The kernel's inputs: row offsets, column numbers (shifted by ``column_offset``), values."""
    matrix = matrix.copy()
    matrix.sort_indices()
    return (
        tf.constant(matrix.indptr.astype(np.int64)),
        tf.constant((matrix.indices.astype(np.int64) + column_offset).astype(np.int32)),
        tf.constant(matrix.data.astype(np.float32)),
    )


class LightGCN(tf.Module):
    """LightGCN embeddings over a fixed normalised graph, with its own Adam optimiser.

    ``interactions`` is R̂ from ``graph.normalized_interactions`` (users × items). Layer-0
    embeddings start as N(0, 0.1²) (the paper's reference code) drawn from a numpy Generator
    seeded with ``seed``, so initialisation is reproducible; ``initial`` (a warm start) then
    overwrites the rows of the users and items an earlier version learnt.
    """

    @classmethod
    def from_config(
        cls,
        interactions: sp.csr_matrix,
        config: TrainConfig,
        initial: InitialState | None = None,
        native: bool | None = None,
    ) -> "LightGCN":
        """The model a :class:`TrainConfig` describes (its size, L2, rate and seed)."""
        return cls(
            interactions,
            dim=config.dim,
            n_layers=config.n_layers,
            l2=config.l2,
            learning_rate=config.learning_rate,
            seed=config.seed,
            negative_candidates=config.negative_candidates,
            initial=initial,
            native=native,
        )

    def __init__(
        self,
        interactions: sp.csr_matrix,
        *,
        dim: int,
        n_layers: int,
        l2: float,
        learning_rate: float,
        seed: int = 0,
        negative_candidates: int = 1,
        initial: InitialState | None = None,
        native: bool | None = None,
    ) -> None:
        super().__init__(name="lightgcn")
        self.n_users, self.n_items = interactions.shape
        self.n_layers = n_layers
        self._scale = tf.constant(1.0 / (n_layers + 1), tf.float32)
        self._l2 = tf.constant(l2, tf.float32)
        self.learning_rate = tf.Variable(learning_rate, dtype=tf.float32, trainable=False)
        init = np.random.default_rng(seed).normal(0.0, 0.1, (self.n_users + self.n_items, dim))
        init = init.astype(np.float32)
        if initial is not None:
            for carried, offset in ((initial.users, 0), (initial.items, self.n_users)):
                if not len(carried.index):
                    continue  # nothing carried on this side (rows of no width): all drawn
                if carried.width != dim:
                    raise ValueError(f"initial rows have {carried.width} values, the model {dim}")
                init[offset + carried.index] = carried.rows
        self.users = tf.Variable(init[: self.n_users], name="users_0")
        self.items = tf.Variable(init[self.n_users :], name="items_0")
        # Adam's first and second moments, one of each per table.
        self._m = [tf.Variable(tf.zeros_like(t), trainable=False) for t in (self.users, self.items)]
        self._v = [tf.Variable(tf.zeros_like(t), trainable=False) for t in (self.users, self.items)]
        self._t = tf.Variable(0.0, trainable=False)
        self._r = BlockedProduct(interactions, dim, native=native)
        self._rt = BlockedProduct(interactions.T, dim, native=native)
        self.negative_candidates = negative_candidates
        spec = tf.TensorSpec([None], tf.int32)
        negatives = tf.TensorSpec(
            [None] if negative_candidates == 1 else [None, negative_candidates], tf.int32
        )
        self.train_step = tf.function(self._train_step, input_signature=[spec, spec, negatives])

    def propagate(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Final embeddings of all users and items: mean over layers 0..K of Â^k E⁰."""
        users, items = self._sum_of_layers(self.users.read_value(), self.items.read_value())
        return users * self._scale, items * self._scale

    def _sum_of_layers(
        self, users: tf.Tensor, items: tf.Tensor, extra: tuple[tf.Tensor, tf.Tensor] | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Σ_k Â^k·[users; items] over k = 0..K (P without its 1/(K+1)), plus ``extra`` per side.

        By Horner's scheme, S ← x + Â·S K times from S = x, so each layer is one product that
        starts every row from its addend: no running sums of layers. Those are chains of adds,
        which TensorFlow's graph optimiser rewrites into one AddN where it knows the shapes, and
        AddN adds in an order that depends on which input's buffer it can reuse (two runs of a
        process differed in the last bit). The step folds P's 1/(K+1) into its batch rows
        instead of scaling whole tables. It is also the backward pass, P being symmetric.
        """
        last_users, last_items = users, items
        if extra is not None:
            last_users, last_items = users + extra[0], items + extra[1]
        sum_users, sum_items = (users, items) if self.n_layers else (last_users, last_items)
        for layer in range(self.n_layers):
            add_users, add_items = (
                (last_users, last_items) if layer == self.n_layers - 1 else (users, items)
            )
            sum_users, sum_items = self._r(sum_items, add_users), self._rt(sum_users, add_items)
        return sum_users, sum_items

    def _train_step(
        self, users: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        sum_users, sum_items = self._sum_of_layers(self.users.read_value(), self.items.read_value())
        e_user = tf.gather(sum_users, users) * self._scale
        e_pos = tf.gather(sum_items, positives) * self._scale
        if self.negative_candidates > 1:
            negatives = self._hardest(sum_items, e_user, negatives)
        e_neg = tf.gather(sum_items, negatives) * self._scale
        margin = tf.reduce_sum(e_user * (e_pos - e_neg), axis=1)
        batch = tf.cast(tf.shape(users)[0], tf.float32)
        bpr = tf.reduce_mean(tf.nn.softplus(-margin))  # -log σ(pos - neg), overflow-safe
        both = tf.concat([positives, negatives], axis=0)
        # The L2 term sums the batch's layer-0 rows, a row once per occurrence: as counts per
        # row it is one pass over each table instead of a gather and a scatter of the batch's
        # rows (the item-side scatter of a 100K-row batch alone cost 20-40 ms).
        user_counts = tf.math.bincount(
            users, minlength=self.n_users, maxlength=self.n_users, dtype=tf.float32
        )
        item_counts = tf.math.bincount(
            both, minlength=self.n_items, maxlength=self.n_items, dtype=tf.float32
        )
        u0, i0 = self.users.read_value(), self.items.read_value()
        squared = tf.tensordot(user_counts, tf.reduce_sum(tf.square(u0), axis=1), 1)
        squared += tf.tensordot(item_counts, tf.reduce_sum(tf.square(i0), axis=1), 1)
        loss = bpr + self._l2 * squared / 2.0 / batch

        # d bpr / d margin, then the gradient of the final rows the batch touched, with P's
        # 1/(K+1) applied here, to the batch's rows.
        slope = (-tf.sigmoid(-margin) * self._scale / batch)[:, None]
        grad_final_users = tf.math.unsorted_segment_sum(
            slope * (e_pos - e_neg), users, self.n_users
        )
        grad_final_items = tf.math.unsorted_segment_sum(
            tf.concat([slope * e_user, -slope * e_user], axis=0), both, self.n_items
        )
        decay = self._l2 / batch
        grad_users, grad_items = self._sum_of_layers(
            grad_final_users,
            grad_final_items,
            extra=((decay * user_counts)[:, None] * u0, (decay * item_counts)[:, None] * i0),
        )
        self._adam(grad_users, grad_items)
        return loss, bpr

    def _hardest(self, sum_items: tf.Tensor, e_user: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Each row's best-scored candidate item, scoring one candidate column at a time so
        that a step holds one batch × dim block of candidates, not one per candidate."""
        scores = [
            tf.reduce_sum(e_user * tf.gather(sum_items, candidates[:, column]), axis=1)
            for column in range(self.negative_candidates)
        ]
        pick = tf.argmax(tf.stack(scores, axis=1), axis=1, output_type=tf.int32)
        return tf.gather(candidates, pick, batch_dims=1)

    def _adam(self, grad_users: tf.Tensor, grad_items: tf.Tensor) -> None:
        """Dense Adam: the propagated gradient touches nearly every row anyway."""
        t = self._t.assign_add(1.0)
        grads = (grad_users, grad_items)
        for table, grad, m, v in zip(
            (self.users, self.items), grads, self._m, self._v, strict=True
        ):
            tf.raw_ops.ResourceApplyAdam(
                var=table.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=tf.pow(_BETA1, t),
                beta2_power=tf.pow(_BETA2, t),
                lr=self.learning_rate,
                beta1=_BETA1,
                beta2=_BETA2,
                epsilon=_EPSILON,
                grad=grad,
            )

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Final (propagated) user and item embeddings as float32 numpy arrays."""
        users, items = self.propagate()
        return users.numpy(), items.numpy()

    def _variables(self) -> list[tf.Variable]:
        return [self.users, self.items, *self._m, *self._v, self._t]

    def get_weights(self) -> list[np.ndarray]:
        """Copy of every variable (embeddings and Adam state), for restoring a best epoch."""
        return [v.numpy() for v in self._variables()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for variable, value in zip(self._variables(), weights, strict=True):
            variable.assign(value)
