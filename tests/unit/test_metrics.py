"""Ranking metrics against hand-computed values."""

import math

import numpy as np
import pytest

from recsys.data.graph import interaction_matrix
from recsys.evaluation.metrics import METRICS, ranking_metrics


def _relevant(pairs: list[tuple[int, int]], n_users: int = 3, n_items: int = 10):
    users, items = zip(*pairs, strict=True)
    return interaction_matrix(np.array(users), np.array(items), n_users, n_items)


def test_hand_computed_user_with_fewer_test_items_than_k() -> None:
    # User 0 ranks [3, 1, 7, 2]; test items {1, 2}: hits at ranks 2 and 4.
    result = ranking_metrics(np.array([[3, 1, 7, 2]]), _relevant([(0, 1), (0, 2)], 1), [2, 4])
    v = result.values
    assert result.n_users == 1
    assert v[("precision", 4)] == pytest.approx(2 / 4)
    assert v[("recall", 4)] == pytest.approx(1.0)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert v[("ndcg", 4)] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert v[("map", 4)] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert v[("map_full", 4)] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert v[("hit_rate", 4)] == 1.0 and v[("mrr", 4)] == pytest.approx(0.5)
    # At k=2 only the hit at rank 2 counts; ideal DCG is over min(|T|, k) = 2 positions.
    assert v[("ndcg", 2)] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert v[("map", 2)] == pytest.approx((1 / 2) / 2)
    assert v[("recall", 2)] == pytest.approx(0.5)


def test_map_normalisations_differ_when_test_set_exceeds_k() -> None:
    # Test set of 4 items, k = 2, both ranked items hit.
    relevant = _relevant([(0, 0), (0, 1), (0, 2), (0, 3)], 1)
    v = ranking_metrics(np.array([[0, 1]]), relevant, [2]).values
    assert v[("map", 2)] == pytest.approx(1.0)
    assert v[("map_full", 2)] == pytest.approx(2 / 4)
    assert v[("ndcg", 2)] == pytest.approx(1.0)


def test_padding_users_without_test_items_and_averaging() -> None:
    # k larger than the candidates: user 0's list is padded with -1 (see recsys/scoring/topk.py).
    recommended = np.array([[4, -1, -1], [5, 6, 2], [0, 1, 2]])
    relevant = _relevant([(0, 4), (1, 2), (1, 9)])  # user 2 has no test items
    result = ranking_metrics(recommended, relevant, [3])
    v = result.values
    assert result.n_users == 2
    assert v[("precision", 3)] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert v[("recall", 3)] == pytest.approx((1.0 + 0.5) / 2)
    assert v[("mrr", 3)] == pytest.approx((1.0 + 1 / 3) / 2)
    assert v[("hit_rate", 3)] == 1.0
    ndcg_user1 = (1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert v[("ndcg", 3)] == pytest.approx((1.0 + ndcg_user1) / 2)
    assert set(v) == {(m, 3) for m in METRICS}


def test_users_argument_maps_rows_and_no_hits_is_zero() -> None:
    relevant = _relevant([(2, 1)])
    v = ranking_metrics(np.array([[3, 4]]), relevant, [2], users=np.array([2])).values
    assert all(v[(m, 2)] == 0.0 for m in METRICS)


def test_too_short_lists_and_no_test_users() -> None:
    with pytest.raises(ValueError):
        ranking_metrics(np.array([[1]]), _relevant([(0, 1)]), [2])
    empty = ranking_metrics(np.array([[1]]), _relevant([(1, 1)]), [1], users=np.array([0]))
    assert empty.n_users == 0 and math.isnan(empty.values[("ndcg", 1)])
