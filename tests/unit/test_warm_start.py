"""Carrying layer-0 rows into a new model by external id (recsys/model/warm_start.py)."""

import numpy as np
import pytest

from recsys.data.graph import normalized_interactions
from recsys.model.lightgcn import LightGCN
from recsys.model.warm_start import CarriedRows, InitialState, carry


def test_rows_land_at_the_index_of_their_id_and_unknown_ids_are_dropped() -> None:
    run_ids = np.array([3, 7, 10, 42])
    chunks = [
        (np.array([42, 5, 3]), np.array([[4.0], [5.0], [3.0]], np.float32)),
        (np.array([99, 10]), np.array([[9.0], [1.0]], np.float32)),
    ]
    carried = carry(run_ids, chunks)
    assert dict(zip(carried.index.tolist(), carried.rows[:, 0].tolist(), strict=True)) == {
        3: 4.0,
        0: 3.0,
        2: 1.0,
    }
    wanted = np.array([True, True, False, True])
    kept = carry(run_ids, chunks, wanted)
    assert sorted(kept.index.tolist()) == [0, 3]
    assert len(carry(run_ids, []).index) == 0
    assert len(carry(np.array([], np.int64), chunks).index) == 0


def test_a_model_starts_from_the_carried_rows_and_draws_the_others_as_a_cold_start() -> None:
    graph = normalized_interactions(np.array([0, 1, 2]), np.array([0, 1, 1]), 3, 2)
    settings = {"dim": 4, "n_layers": 1, "l2": 0.0, "learning_rate": 0.01, "seed": 5}
    cold = LightGCN(graph, **settings)
    user_row = np.full((1, 4), 7.0, np.float32)
    item_row = np.full((1, 4), -3.0, np.float32)
    initial = InitialState(
        CarriedRows(np.array([1]), user_row), CarriedRows(np.array([0]), item_row)
    )
    warm = LightGCN(graph, **settings, initial=initial)
    users, items = warm.users.numpy(), warm.items.numpy()
    np.testing.assert_array_equal(users[1], user_row[0])
    np.testing.assert_array_equal(items[0], item_row[0])
    np.testing.assert_array_equal(users[[0, 2]], cold.users.numpy()[[0, 2]])
    np.testing.assert_array_equal(items[1], cold.items.numpy()[1])


def test_rows_of_another_size_are_refused() -> None:
    graph = normalized_interactions(np.array([0, 1]), np.array([0, 1]), 2, 2)
    initial = InitialState(
        CarriedRows(np.array([0]), np.ones((1, 3), np.float32)),
        CarriedRows(np.empty(0, np.int64), np.empty((0, 0), np.float32)),
    )
    with pytest.raises(ValueError, match="3 values, the model 4"):
        LightGCN(graph, dim=4, n_layers=1, l2=0.0, learning_rate=0.01, initial=initial)


def test_a_side_with_nothing_carried_is_drawn_as_a_cold_start() -> None:
    graph = normalized_interactions(np.array([0, 1]), np.array([0, 1]), 2, 2)
    settings = {"dim": 4, "n_layers": 1, "l2": 0.0, "learning_rate": 0.01, "seed": 5}
    item_row = np.full((1, 4), 2.0, np.float32)
    initial = InitialState(carry(np.array([3, 8]), []), CarriedRows(np.array([1]), item_row))
    warm = LightGCN(graph, **settings, initial=initial)
    np.testing.assert_array_equal(warm.users.numpy(), LightGCN(graph, **settings).users.numpy())
    np.testing.assert_array_equal(warm.items.numpy()[1], item_row[0])
