"""Distinct ids of a stream of chunks, kept as one sorted array as small as the catalogue.

``np.unique`` on integers hashes (numpy 2.x), which measured tens of times slower than sorting
here, so these sort.
"""

import numpy as np


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


class DistinctIds:
    """Collects the distinct values of many arrays; memory follows the distinct values, not the
    values seen (chunks are merged once the pending ones outgrow what is merged)."""

    def __init__(self) -> None:
        self._merged = np.empty(0, np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, values: np.ndarray) -> None:
        distinct = sorted_distinct(values)
        self._pending.append(distinct)
        self._pending_size += len(distinct)
        if self._pending_size > max(len(self._merged), 1 << 20):
            self._merge()

    def result(self) -> np.ndarray:
        self._merge()
        return self._merged

    def _merge(self) -> None:
        if self._pending:
            self._merged = sorted_distinct(np.concatenate([self._merged, *self._pending]))
            self._pending, self._pending_size = [], 0
