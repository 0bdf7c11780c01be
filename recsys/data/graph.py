"""The user-item graph LightGCN propagates over.

Public API:
    interaction_matrix(users, items, n_users, n_items) -> scipy.sparse.csr_matrix (bool)
    normalized_interactions(users, items, n_users, n_items) -> scipy.sparse.csr_matrix
    inverse_sqrt(degree) -> np.ndarray float64     1/sqrt(degree), 0 where the degree is 0

The LightGCN graph is bipartite: its symmetric-normalised adjacency D^-1/2 A D^-1/2 is
[[0, R̂], [R̂ᵀ, 0]] with R̂ the normalised users × items block, so only R̂ is built (and
its transpose, by the model). Propagating through the two blocks instead of the
(users + items)² matrix does the same arithmetic while each product gathers rows of one
side's table only, which is smaller and stays in cache longer. A dense matrix would not
fit for real data; everything here is sparse.
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


def normalized_interactions(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """R̂ = D_u^-1/2 R D_i^-1/2 as float32 CSR, R the binary user × item matrix.

    Repeated (user, item) pairs count once. A user or item without interactions has degree 0
    and an all-zero row or column instead of the inf/NaN a plain 1/sqrt(0) would give.
    """
    matrix = interaction_matrix(users, items, n_users, n_items).astype(np.float32)
    matrix.sort_indices()
    user_scale = inverse_sqrt(np.diff(matrix.indptr))
    item_scale = inverse_sqrt(np.bincount(matrix.indices, minlength=n_items))
    row_of = np.repeat(np.arange(n_users), np.diff(matrix.indptr))
    matrix.data = (user_scale[row_of] * item_scale[matrix.indices]).astype(np.float32)
    return matrix


def inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    """D^-1/2 of a degree vector, 0 (not inf) for a node without interactions."""
    scale = np.zeros(len(degree), dtype=np.float64)
    np.divide(1.0, np.sqrt(degree, dtype=np.float64), out=scale, where=degree > 0)
    return scale
