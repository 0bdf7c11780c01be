"""Split invariants: no leakage, exact per-user counts, reproducibility, tie rules."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import split


def _users(seed: int = 0, n_users: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 30, n_users)
    return rng.permutation(np.repeat(np.arange(n_users), counts))


def _assert_partition(train: np.ndarray, test: np.ndarray, n: int) -> None:
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


@given(st.lists(st.integers(0, 8), min_size=0, max_size=200), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_stratified_counts_per_user(users: list[int], seed: int) -> None:
    users_arr = np.array(users, dtype=np.int64)
    train, test = split.stratified(users_arr, 0.25, seed)
    _assert_partition(train, test, len(users))
    for user in np.unique(users_arr):
        n = int((users_arr == user).sum())
        n_test = int(np.isin(test, np.flatnonzero(users_arr == user)).sum())
        expected = 0 if n == 1 else min(max(int(np.floor(0.25 * n + 0.5)), 1), n - 1)
        assert n_test == expected


def test_stratified_overall_ratio_and_single_interaction_users_stay_in_train() -> None:
    users = np.r_[_users(), 1000]  # user 1000 has one interaction
    train, test = split.stratified(users, 0.25, 7)
    assert abs(len(test) / len(users) - 0.25) < 0.03
    assert len(users) - 1 in train


def test_stratified_is_reproducible_and_seed_dependent() -> None:
    users = _users()
    first = split.stratified(users, 0.25, 3)
    again = split.stratified(users, 0.25, np.random.default_rng(3))
    other = split.stratified(users, 0.25, 4)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_rejects_bad_ratio() -> None:
    with pytest.raises(ValueError):
        split.stratified(_users(), 1.0)


def test_validation_is_carved_from_train_only() -> None:
    users = _users(1)
    train, test = split.stratified(users, 0.25, 1)
    fit, val = split.validation(users, train, 0.1, 1)
    _assert_partition(np.searchsorted(train, fit), np.searchsorted(train, val), len(train))
    assert np.isin(fit, train).all() and np.isin(val, train).all()
    assert not np.isin(val, test).any()


def test_temporal_cutoff_and_ratios() -> None:
    rng = np.random.default_rng(0)
    times = rng.integers(0, 1000, 500)
    train, test = split.temporal(times, cutoff=600)
    _assert_partition(train, test, len(times))
    assert (times[test] >= 600).all() and (times[train] < 600).all()

    train, test = split.temporal(times, test_ratio=0.2)
    assert times[train].max() < times[test].min()
    assert 0.2 <= len(test) / len(times) < 0.22

    train, test = split.temporal(times, test_ratio=0.2, basis="time")
    cut = times.min() + 0.8 * (times.max() - times.min())
    assert (times[test] >= cut).all() and (times[train] < cut).all()


def test_temporal_accepts_datetimes_and_ties_go_to_test() -> None:
    times = np.array(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-03"], "datetime64[s]")
    train, test = split.temporal(times, test_ratio=0.25)
    np.testing.assert_array_equal(test, [2, 3])
    train, test = split.temporal(times, cutoff=np.datetime64("2020-01-02"))
    np.testing.assert_array_equal(train, [0])
    with pytest.raises(ValueError):
        split.temporal(times)


def test_leave_last_takes_latest_with_deterministic_ties() -> None:
    users = np.array([0, 0, 0, 1, 1, 1, 2])
    items = np.array([5, 6, 7, 3, 9, 4, 1])
    times = np.array([1, 3, 2, 5, 5, 1, 9])
    train, test = split.leave_last(users, items, times)
    _assert_partition(train, test, len(users))
    np.testing.assert_array_equal(test, [1, 4])  # user 1: tie at t=5 → higher item 9
    order = np.random.default_rng(0).permutation(len(users))
    _, test_shuffled = split.leave_last(users[order], items[order], times[order])
    np.testing.assert_array_equal(np.sort(order[test_shuffled]), [1, 4])
