"""What ``evaluate`` feeds the metrics, against values worked out by hand on a tiny fixture.

Three users, five items. The item embeddings are the identity, so a user's embedding *is* its
score for each item, written out below. The fixture is built so that each wiring mistake changes
the figures:

* every user's highest score is a training item: ranking it would push the test items down;
* popularity from training interactions ranks item 4 second of three for both test users, but
  counting their test interactions too would make it the most popular item (3 against 2);
* user 2 has no test item: counting it would add a third user (with zeros) to every average.

    user  train     test    scores of items 0..4   model ranking  popularity ranking
    0     {0, 1}    {4}     5 1 2 3 4              4 3 2          2 4 3
    1     {1, 2}    {3, 4}  2 5 4 3 1              3 0 4          0 4 3
    2     {0, 2, 4} {}      1 2 3 4 5              -              -

Training counts per item: 0: 2, 1: 2, 2: 2, 3: 0, 4: 1. Popularity ranks each user's items that
are not its training items by that count (user 0: 2, 4, 3; user 1: 0, 4, 3).
"""

import math

import numpy as np
import pytest

from recsys.evaluation.evaluate import evaluate
from recsys.evaluation.metrics import METRICS

TRAIN = {0: [0, 1], 1: [1, 2], 2: [0, 2, 4]}
TEST = {0: [4], 1: [3, 4]}
SCORES = [[5, 1, 2, 3, 4], [2, 5, 4, 3, 1], [1, 2, 3, 4, 5]]
KS = (1, 3)

#: 1 / log2(rank + 1): the NDCG discount of ranks 1, 2, 3.
D1, D2, D3 = 1.0, 1 / math.log2(3), 1 / math.log2(4)

# Per user, the hits of its ranking (see the table), then each figure as the mean of users 0 and 1:
#   model:      user 0 hits (1, 0, 0), |test| 1;  user 1 hits (1, 0, 1), |test| 2
#   popularity: user 0 hits (0, 1, 0), |test| 1;  user 1 hits (0, 1, 1), |test| 2
# map divides by min(|test|, k), map_full by |test|; the ideal DCG runs over min(|test|, k) ranks.
COLUMNS = (("model", 1), ("model", 3), ("baseline", 1), ("baseline", 3))
EXPECTED = {  # model@1, model@3, baseline@1 (no first item is a test item), baseline@3
    "precision": ((1 + 1) / 2, (1 / 3 + 2 / 3) / 2, 0.0, (1 / 3 + 2 / 3) / 2),
    "recall": ((1 + 1 / 2) / 2, (1 + 2 / 2) / 2, 0.0, (1 + 2 / 2) / 2),
    "ndcg": (
        (D1 / D1 + D1 / D1) / 2,
        (D1 / D1 + (D1 + D3) / (D1 + D2)) / 2,
        0.0,
        (D2 / D1 + (D2 + D3) / (D1 + D2)) / 2,
    ),
    "map": (
        (1 / 1 + 1 / 1) / 2,
        (1 / 1 + (1 / 1 + 2 / 3) / 2) / 2,
        0.0,
        (1 / 2 + (1 / 2 + 2 / 3) / 2) / 2,
    ),
    "map_full": (
        (1 / 1 + 1 / 2) / 2,
        (1 / 1 + (1 / 1 + 2 / 3) / 2) / 2,
        0.0,
        (1 / 2 + (1 / 2 + 2 / 3) / 2) / 2,
    ),
    "hit_rate": (1.0, 1.0, 0.0, 1.0),
    "mrr": ((1 + 1) / 2, (1 + 1) / 2, 0.0, (1 / 2 + 1 / 2) / 2),
}


def _pairs(by_user: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    users = [user for user, items in by_user.items() for _ in items]
    return np.array(users), np.array([item for items in by_user.values() for item in items])


def test_evaluate_excludes_training_items_counts_training_popularity_and_test_users() -> None:
    rows = evaluate(
        np.array(SCORES, dtype=np.float32),
        np.eye(5, dtype=np.float32),
        *_pairs(TRAIN),
        *_pairs(TEST),
        KS,
    )
    found = {(row.model, row.k, row.metric): row.value for row in rows}
    expected = {
        (model, k, metric): value
        for metric, values in EXPECTED.items()
        for (model, k), value in zip(COLUMNS, values, strict=True)
    }
    assert found == pytest.approx(expected, abs=1e-12)
    assert [(row.model, row.k, row.metric) for row in rows] == [
        (model, k, metric) for model in ("model", "baseline") for k in KS for metric in METRICS
    ]
    assert {row.n_users for row in rows} == {2}  # users 0 and 1; user 2 has no test item
