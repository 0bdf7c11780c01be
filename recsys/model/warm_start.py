"""A model's starting point taken from an earlier version: layer-0 rows matched by external id.

Users and items that persist from the earlier version start from its learnt layer-0 rows; new
ones are initialised as in a cold start (N(0, 0.1²) from the run's seed). Adam's moments and the
learning-rate schedule start afresh: the earlier run's optimiser state is not kept.

TensorFlow-free, like the settings, so the rows can be read and matched before training starts.

Public API:
    CarriedRows(index, rows)                       rows for some of this run's node indices
    InitialState(users, items)                     both sides, for LightGCN(initial=...)
    carry(run_ids, chunks, wanted=None) -> CarriedRows
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CarriedRows:
    """Earlier rows for this run's indices ``index`` (int64, unique), one row of ``rows`` each."""

    index: np.ndarray
    rows: np.ndarray

    @property
    def width(self) -> int:
        return self.rows.shape[1]


@dataclass(frozen=True)
class InitialState:
    """Layer-0 rows carried into a new model: users by user index, items by item index."""

    users: CarriedRows
    items: CarriedRows


def carry(
    run_ids: np.ndarray,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    wanted: np.ndarray | None = None,
) -> CarriedRows:
    """Match stored ``(ids, rows)`` chunks to this run's external ids ``run_ids`` (sorted,
    unique): each stored row whose id this run has lands at that id's index; ids this run does
    not have are dropped, as are indices where ``wanted`` (bool per index) is False."""
    run_ids = np.asarray(run_ids, np.int64)
    index, rows = [], []
    for ids, vectors in chunks:
        at = np.minimum(np.searchsorted(run_ids, ids), max(len(run_ids) - 1, 0))
        hit = run_ids[at] == ids if len(run_ids) else np.zeros(len(ids), bool)
        if wanted is not None:
            hit &= wanted[at]
        index.append(at[hit])
        rows.append(vectors[hit])
    if not index:
        return CarriedRows(np.empty(0, np.int64), np.empty((0, 0), np.float32))
    return CarriedRows(np.concatenate(index), np.concatenate(rows))
