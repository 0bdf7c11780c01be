"""The fairness rule shared by warm start and the champion (recsys/data/lineage.py)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from recsys.data.lineage import learnt_from, unfair_reason

#: 2024-05-01T12:00:00.000001Z: a time with a microsecond part, where float seconds are inexact.
T = datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC).timestamp()
MICRO = 1e-6


def test_the_record_is_the_latest_time_to_the_microsecond_and_the_untimed_count() -> None:
    record = learnt_from(np.array([T - 5, T, np.nan, T - 1]))
    assert record == {"trained_until": "2024-05-01T12:00:00.000001+00:00", "trained_untimed": 1}
    assert learnt_from(np.array([np.nan])) == {"trained_until": None, "trained_untimed": 1}


def test_fair_only_when_every_test_interaction_is_strictly_later() -> None:
    stats = learnt_from(np.array([T - 100, T]))
    assert unfair_reason("v1", stats, np.array([T + MICRO, T + 50]), "temporal") is None
    # The same microsecond as the last trained interaction is not later.
    reason = unfair_reason("v1", stats, np.array([T, T + 50]), "temporal")
    assert reason is not None
    assert "1 of this run's 2 test interactions" in reason
    assert "use a cut-off after 2024-05-01T12:00:00.000001+00:00" in reason


def test_a_mixed_split_is_unfair_and_says_why() -> None:
    stats = learnt_from(np.array([T]))
    reason = unfair_reason("v1", stats, np.array([T - 10, T + 10]), "stratified")
    assert reason is not None and "whole history" in reason
    # The rule is about times, not the split's name: a stratified test set that is all newer
    # than what v1 learnt from cannot contain anything v1 saw.
    assert unfair_reason("v1", stats, np.array([T + 1, T + 10]), "stratified") is None


@pytest.mark.parametrize(
    ("stats", "test", "expected"),
    [
        ({}, [T + 1], "published before recsys recorded"),
        ({"trained_until": None, "trained_untimed": 3}, [T + 1], "3 of the interactions"),
        (learnt_from(np.array([T, np.nan])), [T + 1], "1 of the interactions"),
        (learnt_from(np.array([T])), [T + 1, np.nan], "1 of this run's test interactions"),
    ],
)
def test_unknown_is_unfair(stats: dict, test: list[float], expected: str) -> None:
    reason = unfair_reason("v1", stats, np.array(test), "temporal")
    assert reason is not None and expected in reason
