"""Train/test splits over interaction arrays, returning index arrays.

Every function takes parallel per-interaction arrays (contiguous user indices, times, ...)
and returns ``(train_idx, test_idx)``: sorted int64 positions into those arrays, disjoint,
together covering every interaction. Nothing loops per user in Python; per-user work is
done by sorting so the splits stay fast on millions of interactions. Random splits take a
seed or a ``numpy.random.Generator`` and are reproducible from it.

Public API:
    stratified(users, test_ratio=0.25, seed=0) -> (train_idx, test_idx)
    validation(users, train_idx, val_ratio=0.1, seed=0) -> (fit_idx, val_idx)
    temporal(times, *, cutoff=None, test_ratio=None, basis="interactions") -> (train_idx, test_idx)
    leave_last(users, items, times) -> (train_idx, test_idx)

Users with a single interaction always stay entirely in train (``stratified``,
``validation`` and ``leave_last``): a lone interaction cannot be both learnt from and
tested, and keeping it lets the graph still embed that user and item.
"""

from typing import Literal

import numpy as np

Seed = int | np.random.Generator


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _group_ranks(groups_sorted: np.ndarray) -> np.ndarray:
    """Rank of each position within its run of equal ``groups_sorted`` values (0-based)."""
    n = len(groups_sorted)
    starts = np.flatnonzero(np.r_[True, groups_sorted[1:] != groups_sorted[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    return np.arange(n) - run_start


def _split(test_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def stratified(
    users: np.ndarray, test_ratio: float = 0.25, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user random split: each user gives round(test_ratio·n) of its n interactions to test.

    Rounding is half-up. A user with n ≥ 2 interactions gets at least 1 and at most n-1 test
    interactions, so every evaluated user is also known to the model; a user with n = 1 stays
    wholly in train. Matches the notebook's 75/25 split with ``test_ratio=0.25``.
    """
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    users = np.asarray(users)
    if len(users) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    order = np.lexsort((_rng(seed).random(len(users)), users))
    users_sorted = users[order]
    rank = _group_ranks(users_sorted)
    _, inverse, counts = np.unique(users_sorted, return_inverse=True, return_counts=True)
    n_test = np.floor(test_ratio * counts + 0.5).astype(np.int64)
    n_test = np.where(counts >= 2, np.clip(n_test, 1, counts - 1), 0)
    test_mask = np.zeros(len(users), dtype=bool)
    test_mask[order] = rank < n_test[inverse]
    return _split(test_mask)


def validation(
    users: np.ndarray, train_idx: np.ndarray, val_ratio: float = 0.1, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a per-user stratified validation set out of ``train_idx``.

    Returns ``(fit_idx, val_idx)``, positions into the original arrays (subsets of train_idx).
    """
    train_idx = np.asarray(train_idx, dtype=np.int64)
    fit_local, val_local = stratified(np.asarray(users)[train_idx], val_ratio, seed)
    return np.sort(train_idx[fit_local]), np.sort(train_idx[val_local])


def temporal(
    times: np.ndarray,
    *,
    cutoff: object = None,
    test_ratio: float | None = None,
    basis: Literal["interactions", "time"] = "interactions",
) -> tuple[np.ndarray, np.ndarray]:
    """Global time cut: interactions at or after the cut-off go to test.

    Give either ``cutoff`` (a value comparable with ``times``, e.g. ``np.datetime64``) or
    ``test_ratio``. With ``basis="interactions"`` the cut-off is the time of the interaction
    that starts the latest ``round(test_ratio·n)``; interactions sharing that timestamp all
    go to test, so the share can exceed the ratio slightly but no train interaction is ever
    later than a test one. With ``basis="time"`` the cut-off is at ``1 - test_ratio`` of the
    span between the earliest and latest time.
    """
    times = np.asarray(times)
    if (cutoff is None) == (test_ratio is None):
        raise ValueError("give exactly one of cutoff and test_ratio")
    if cutoff is None:
        assert test_ratio is not None
        if not 0.0 < test_ratio < 1.0:
            raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
        if len(times) == 0:
            return _split(np.zeros(0, dtype=bool))
        ticks = times.view(np.int64) if np.issubdtype(times.dtype, np.datetime64) else times
        if basis == "interactions":
            n_test = max(1, int(np.floor(test_ratio * len(times) + 0.5)))
            cut = np.sort(ticks, kind="stable")[len(times) - n_test]
        elif basis == "time":
            lo, hi = ticks.min(), ticks.max()
            cut = lo + (hi - lo) * (1.0 - test_ratio)
        else:
            raise ValueError(f"unknown basis {basis!r}")
        return _split(ticks >= cut)
    return _split(times >= cutoff)


def leave_last(
    users: np.ndarray, items: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's latest interaction goes to test (users with one interaction stay in train).

    Ties on the latest time go to the interaction with the highest item index, so the result
    does not depend on the row order the database returned.
    """
    users = np.asarray(users)
    if len(users) == 0:
        return _split(np.zeros(0, dtype=bool))
    order = np.lexsort((np.asarray(items), np.asarray(times), users))
    users_sorted = users[order]
    is_last = np.r_[users_sorted[1:] != users_sorted[:-1], True]
    is_first = np.r_[True, users_sorted[1:] != users_sorted[:-1]]
    test_mask = np.zeros(len(users), dtype=bool)
    test_mask[order] = is_last & ~is_first
    return _split(test_mask)
