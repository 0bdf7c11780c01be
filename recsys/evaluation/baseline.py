"""Popularity baseline: the reference every model figure is reported beside.

Public API:
    popularity_scores(items, n_items) -> np.ndarray float32 [n_items]
"""

import numpy as np


def popularity_scores(items: np.ndarray, n_items: int) -> np.ndarray:
    """Score of each item = its number of training interactions (same for every user)."""
    return np.bincount(np.asarray(items, dtype=np.int64), minlength=n_items).astype(np.float32)
