"""Normalised adjacency against a dense numpy reference."""

import numpy as np
import scipy.sparse as sp

from recsys.data.graph import interaction_matrix, normalized_adjacency


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

    adjacency = normalized_adjacency(users, items, n_users, n_items)
    assert isinstance(adjacency, sp.csr_matrix) and adjacency.dtype == np.float32
    np.testing.assert_allclose(adjacency.toarray(), expected, rtol=1e-6)
    assert np.isfinite(adjacency.data).all()
    assert (adjacency != adjacency.T).nnz == 0
    assert adjacency[3].nnz == 0 and adjacency[n_users + 4].nnz == 0


def test_interaction_matrix_is_binary() -> None:
    matrix = interaction_matrix(np.array([0, 0, 1]), np.array([2, 2, 0]), 2, 3)
    assert matrix.nnz == 2 and matrix[0, 2] and matrix[1, 0]
