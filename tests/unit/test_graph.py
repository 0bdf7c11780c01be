"""The normalised interaction block against a dense numpy reference of the full adjacency."""

import numpy as np
import scipy.sparse as sp

from recsys.data.graph import interaction_matrix, normalized_interactions


def test_matches_dense_reference_with_duplicates_and_isolated_nodes() -> None:
    users = np.array([0, 0, 1, 2, 2, 0])  # (0, 1) repeated; user 3 and item 4 isolated
    items = np.array([0, 1, 1, 2, 3, 1])
    n_users, n_items = 4, 5
    dense = np.zeros((n_users + n_items,) * 2)
    dense[users, n_users + items] = 1.0
    dense[n_users + items, users] = 1.0
    degree = dense.sum(axis=1)
    scale = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
    expected = scale[:, None] * dense * scale[None, :]

    block = normalized_interactions(users, items, n_users, n_items)
    assert isinstance(block, sp.csr_matrix) and block.dtype == np.float32
    assert block.shape == (n_users, n_items) and np.isfinite(block.data).all()
    # The full adjacency is [[0, R̂], [R̂ᵀ, 0]]: R̂ is its users × items block.
    np.testing.assert_allclose(block.toarray(), expected[:n_users, n_users:], rtol=1e-6)
    np.testing.assert_allclose(block.toarray().T, expected[n_users:, :n_users], rtol=1e-6)
    assert block[3].nnz == 0 and block[:, 4].nnz == 0


def test_interaction_matrix_is_binary() -> None:
    matrix = interaction_matrix(np.array([0, 0, 1]), np.array([2, 2, 0]), 2, 3)
    assert matrix.nnz == 2 and matrix[0, 2] and matrix[1, 0]
