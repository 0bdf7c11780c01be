"""LightGCN's layer-0 embeddings drawn from the top of the graph's spectrum instead of noise.

With R̂ = U Σ Vᵀ, the pair (u_j, v_j) is an eigenvector of LightGCN's normalised adjacency
[[0, R̂], [R̂ᵀ, 0]] with eigenvalue σ_j: propagation only rescales it, and a model whose layer-0
rows are the top ``dim`` pairs scores user u and item i by Σ_j c_j u_j(u) v_j(i) with
c_j = (Σ_l σ_j^l / (L + 1))², a low-pass filter of the graph, before its first step (Peng et
al., SVD-GCN, CIKM 2022, on why trained embeddings drift there). BPR then trains from a ranking
that is already good instead of from noise, which matters most where few epochs fit.

Scale: each side's rows are scaled to the mean squared norm of the cold start's N(0, 0.1²)
rows, so that Adam's steps and the L2 penalty act on the same magnitudes as in a cold start.

Public API:
    spectral_start(interactions, dim, seed) -> InitialState   every user's and item's row
"""

import numpy as np
import scipy.sparse as sp

from recsys.data.spectrum import max_rank, top_singular
from recsys.model.warm_start import CarriedRows, InitialState

#: The cold start's standard deviation per coordinate (recsys/model/lightgcn.py).
_COLD_SD = 0.1


def spectral_start(interactions: sp.csr_matrix, dim: int, seed: int = 0) -> InitialState | None:
    """Layer-0 rows from the top ``dim`` singular pairs of R̂ (``interactions``, users × items);
    None where the graph has fewer than ``dim`` directions to give (a cold start then)."""
    n_users, n_items = interactions.shape
    if dim > max_rank(n_users, n_items):
        return None
    spectrum = top_singular(interactions, dim, seed)
    return InitialState(_rows(spectrum.users, n_users, dim), _rows(spectrum.items, n_items, dim))


def _rows(vectors: np.ndarray, n: int, dim: int) -> CarriedRows:
    """Every row of one side, scaled so that the mean squared row norm is dim · 0.1²; the
    vectors' columns are orthonormal, so their squared norms sum to ``dim``."""
    scale = np.float32(_COLD_SD * np.sqrt(n))
    return CarriedRows(np.arange(n, dtype=np.int64), vectors * scale)
