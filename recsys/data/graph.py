"""The user-item graph LightGCN propagates over.

Public API:
    interaction_matrix(users, items, n_users, n_items) -> scipy.sparse.csr_matrix (bool)
    normalized_adjacency(users, items, n_users, n_items) -> scipy.sparse.csr_matrix

Nodes 0..n_users-1 are users, n_users..n_users+n_items-1 are items. The matrix is built
directly in sparse form (a dense (n_users+n_items)² matrix would not fit for real data).
"""

import numpy as np
import scipy.sparse as sp


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary user × item CSR (duplicates collapsed): exclusion and relevance sets."""
    data = np.ones(len(users), dtype=bool)
    matrix = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    return matrix


def normalized_adjacency(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Symmetric-normalised bipartite adjacency D^-1/2 A D^-1/2 as float32 CSR.

    Repeated (user, item) pairs count once (A is binary). A node without edges has degree 0
    and gets an all-zero row and column instead of the inf/NaN a plain 1/sqrt(0) would give.
    The result is symmetric, which model.py relies on for its gradient.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    n = n_users + n_items
    rows = np.concatenate([users, items + n_users])
    cols = np.concatenate([items + n_users, users])
    adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    degree = np.diff(adj.indptr).astype(np.float64)
    inv_sqrt = np.zeros(n, dtype=np.float64)
    np.divide(1.0, np.sqrt(degree), out=inv_sqrt, where=degree > 0)
    row_of = np.repeat(np.arange(n), np.diff(adj.indptr))
    adj.data = (inv_sqrt[row_of] * inv_sqrt[adj.indices]).astype(np.float32)
    adj.sort_indices()
    return adj
