"""GF-CF, the training-free spectral baseline every run is judged beside.

Shen et al., "How Powerful is Graph Convolution for Recommendation?" (CIKM 2021): with R the
binary users × items training matrix and R̂ = D_u^-1/2 R D_i^-1/2, user u's scores are

    s_u = r_u R̂ᵀR̂  +  α · r_u D_i^-1/2 V_k V_kᵀ D_i^1/2

a linear filter (item-item co-occurrence, normalised) plus an ideal low-pass filter over R̂'s
top-k right singular vectors V_k. The paper uses k = 256 and α = 0.3 on its denser benchmarks
(Gowalla, Yelp2018) and the linear filter alone on Amazon-Book; on public benchmarks it matches
or beats a fully trained LightGCN in about a minute of CPU, which is why a run shows it.

Scored a chunk of users at a time (recsys/scoring/topk.py): the low-pass term is a product
of a [chunk, k] and a [k, items] factor, and the linear term is the sparse product
(R_chunk R̂ᵀ) R̂, added to that block; the item × item matrix R̂ᵀR̂ is never formed (it is dense
for popular items), and neither is a users × items matrix.

Public API:
    SpectralFilter(interactions, normalized, normalized_t, item_scale, basis, alpha)
        .linear(users) -> float32 [len(users), n_items]  the linear filter's scores
        .low_pass(users) -> ([len(users), k], [n_items, k]) factors of the low-pass term
    filter_rank(requested, n_users, n_items) -> int   the low-pass rank a run uses
    spectral_filter(train_users, train_items, n_users, n_items, rank, alpha, seed=0)
        -> SpectralFilter
    spectral_top_k(filter, k, exclude, users) -> items int64 [len(users), k]
"""

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp

from recsys.data.graph import interaction_matrix, inverse_sqrt, normalized_interactions
from recsys.data.spectrum import max_rank, top_singular
from recsys.scoring.topk import top_k_embeddings

#: The paper's settings on its denser benchmarks: the rank of the ideal low-pass filter and
#: its weight beside the linear one.
DEFAULT_RANK = 256
DEFAULT_ALPHA = 0.3
#: Most entries of the sparse products of a group of users (about 200 MB each with indices).
FAN_OUT = 1 << 24


@dataclass(frozen=True)
class SpectralFilter:
    """A fitted GF-CF filter: the training matrix, R̂ and R̂ᵀ (both CSR: a product with a
    transposed view would convert it again for every group of users), D_i^-1/2 and the
    low-pass basis V_k."""

    interactions: sp.csr_matrix
    normalized: sp.csr_matrix
    normalized_t: sp.csr_matrix
    item_scale: np.ndarray
    basis: np.ndarray
    alpha: float

    def linear(self, users: np.ndarray) -> np.ndarray:
        """r_u R̂ᵀR̂ for ``users``: a dense float32 block [len(users), n_items].

        Two sparse products of a group of users at a time. The intermediate r_u R̂ᵀ has an
        entry for every user who shares an item with u (the sum of the degrees of u's items,
        which grows with the data) and the product one for every item those users touched (up
        to every item): groups are cut so that both stay under ``FAN_OUT`` entries, and each
        group's product is written into the block as it comes.
        """
        rows = self.interactions[users]
        n_items = rows.shape[1]
        fan_out = np.asarray(rows @ np.square(_inverse(self.item_scale)), np.float64)
        block = np.zeros(rows.shape, np.float32)
        for start, end in pairwise(_groups(np.maximum(fan_out, n_items), FAN_OUT)):
            product = (rows[start:end] @ self.normalized_t) @ self.normalized
            block[start:end] = product.toarray()
        return block

    def low_pass(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors (A, B) with A Bᵀ = α · r_u D_i^-1/2 V_k V_kᵀ D_i^1/2 for ``users``."""
        rows = self.interactions[users].multiply(self.item_scale[None, :]).tocsr()
        user_side = np.asarray(rows @ self.basis, dtype=np.float32) * np.float32(self.alpha)
        item_side = self.basis * _inverse(self.item_scale)[:, None]
        return user_side, item_side.astype(np.float32)


def filter_rank(requested: int | None, n_users: int, n_items: int) -> int:
    """The rank of the low-pass filter: the one requested, else the paper's 256 where the data
    has room for it, else a quarter of its smaller side (a tiny graph's top directions).

    The caller refuses a requested rank beyond :func:`recsys.data.spectrum.max_rank` before the
    run starts (recsys/data/holdout.py); here it is only clamped, for direct callers.
    """
    supported = max_rank(n_users, n_items)
    if requested is not None:
        return min(requested, supported)
    return min(DEFAULT_RANK, max(1, min(n_users, n_items) // 4), supported)


def spectral_filter(
    train_users: np.ndarray,
    train_items: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> SpectralFilter:
    """The GF-CF filter of these training interactions, its low-pass basis the top ``rank``
    right singular vectors of R̂ (none when ``alpha`` is 0: the linear filter alone)."""
    normalized = normalized_interactions(train_users, train_items, n_users, n_items)
    interactions = interaction_matrix(train_users, train_items, n_users, n_items)
    item_scale = inverse_sqrt(np.bincount(interactions.indices, minlength=n_items))
    if alpha > 0 and rank > 0:
        basis = top_singular(normalized, rank, seed).items
    else:
        basis = np.zeros((n_items, 0), np.float32)
    return SpectralFilter(
        interactions.astype(np.float32),
        normalized,
        normalized.T.tocsr(),
        item_scale.astype(np.float32),
        basis,
        float(alpha),
    )


def spectral_top_k(
    spectral: SpectralFilter, k: int, exclude: sp.csr_matrix, users: np.ndarray
) -> np.ndarray:
    """The filter's top-k items of each of ``users`` (rows in that order), ``exclude``'s items
    (users × items) never ranked; padded with -1 where fewer than k remain."""
    users = np.asarray(users, np.int64)
    user_side, item_side = spectral.low_pass(users)
    items, _ = top_k_embeddings(
        user_side,
        item_side,
        k,
        exclude=sp.csr_matrix(exclude)[users],
        addend=lambda rows: spectral.linear(users[rows]),
    )
    return items


def _groups(sizes: np.ndarray, most: float) -> np.ndarray:
    """Bounds [0, ..., len(sizes)] of consecutive groups whose sizes sum to at most ``most``
    (a single larger one alone)."""
    ends = np.cumsum(sizes)
    bounds, start = [0], 0
    while start < len(sizes):
        end = int(np.searchsorted(ends, (ends[start - 1] if start else 0.0) + most, "right"))
        start = max(end, start + 1)
        bounds.append(start)
    return np.asarray(bounds)


def _inverse(scale: np.ndarray) -> np.ndarray:
    """1 / scale where scale > 0 (D_i^1/2 from D_i^-1/2), 0 for items without interactions."""
    inverse = np.zeros_like(scale)
    np.divide(1.0, scale, out=inverse, where=scale > 0)
    return inverse
