"""The champion's figures on the run's test set (recsys/evaluation/champion.py), by hand.

Four candidate positions, three evaluated users. The champion knows users 0 and 1 and the items
at positions 0, 2 and 3 (its rows, in that order, are the identity, so a user's row is its score
for those three items):

    user  train  test  champion scores (pos 0, 2, 3)   its ranking     hits
    0     {0}    {2}   5 3 1                            2 3             rank 1
    1     {0}    {1}   1 2 3                            3 2             none (it cannot rank 1)
    2     {1}    {0}   - (unknown to the champion)      (empty)         none, still counted

A ranking by row index instead of position (0 → 0, 1 → 2, 2 → 3) would rank position 1 for user
0 and miss; leaving user 2 out would average over two users instead of three.
"""

import numpy as np
import pytest

from recsys.evaluation.champion import ChampionEmbeddings
from recsys.evaluation.evaluate import evaluate
from recsys.evaluation.metrics import METRICS

CHAMPION = ChampionEmbeddings(
    users=np.array([0, 1]),
    user_emb=np.array([[5, 3, 1], [1, 2, 3]], np.float32),
    items=np.array([0, 2, 3]),
    item_emb=np.eye(3, dtype=np.float32),
)
EXPECTED = {
    ("ndcg", 1): 1 / 3,
    ("hit_rate", 1): 1 / 3,
    ("precision", 2): (1 / 2) / 3,
    ("recall", 2): 1 / 3,
    ("mrr", 2): 1 / 3,
}


def test_the_champion_ranks_what_it_knows_and_unknown_users_count_without_hits() -> None:
    rows = evaluate(
        np.ones((3, 2), np.float32),  # the new model's figures are not what this test checks
        np.ones((4, 2), np.float32),
        np.array([0, 1, 2]),
        np.array([0, 0, 1]),
        np.array([0, 1, 2]),
        np.array([2, 1, 0]),
        (1, 2),
        champion=CHAMPION,
    )
    champion = {(r.metric, r.k): r for r in rows if r.model == "champion"}
    assert set(champion) == {(m, k) for m in METRICS for k in (1, 2)}
    for key, value in EXPECTED.items():
        assert champion[key].value == pytest.approx(value), key
    assert {r.n_users for r in rows} == {3}  # the same users for model, baseline and champion


def test_without_a_champion_there_are_no_champion_rows() -> None:
    rows = evaluate(
        np.ones((2, 2), np.float32),
        np.ones((3, 2), np.float32),
        np.array([0, 1]),
        np.array([0, 1]),
        np.array([0, 1]),
        np.array([2, 2]),
        (1,),
    )
    assert {r.model for r in rows} == {"model", "baseline"}
