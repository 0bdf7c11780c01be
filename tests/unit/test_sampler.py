"""BPR sampler: negatives are never training positives; users with every item are skipped."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data.sampler import BprSampler


@st.composite
def interactions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n_items = draw(st.integers(1, 12))
    pairs = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, n_items - 1)), min_size=1))
    full_user = draw(st.booleans())
    users = [u for u, _ in pairs] + ([7] * n_items if full_user else [])
    items = [i for _, i in pairs] + (list(range(n_items)) if full_user else [])
    return np.array(users), np.array(items), n_items


@given(interactions(), st.integers(1, 50), st.integers(0, 1000))
@settings(max_examples=150, deadline=None)
def test_negatives_are_never_positives(data, batch_size: int, seed: int) -> None:
    users, items, n_items = data
    sampler = BprSampler(users, items, n_items, seed)
    positives = set(zip(users.tolist(), items.tolist(), strict=True))
    full = {u for u in set(users.tolist()) if len({i for v, i in positives if v == u}) == n_items}
    assert set(sampler.excluded_users.tolist()) == full

    assert sampler.n_samples == len({(u, i) for u, i in positives if u not in full})
    if sampler.n_samples == 0:
        return
    for _ in range(3):
        batch_users, batch_pos, batch_neg = sampler.batch(batch_size)
        assert batch_users.dtype == batch_pos.dtype == batch_neg.dtype == np.int32
        assert len(batch_users) == len(batch_pos) == len(batch_neg) == batch_size
        for u, p, n in zip(
            batch_users.tolist(), batch_pos.tolist(), batch_neg.tolist(), strict=True
        ):
            assert u not in full
            assert (u, p) in positives
            assert (u, n) not in positives
            assert 0 <= n < n_items


def test_negatives_cover_every_free_item_uniformly() -> None:
    users = np.array([0, 0, 0, 1])
    items = np.array([1, 4, 5, 0])
    sampler = BprSampler(users, items, 8, seed=0)
    drawn = sampler.negatives(np.zeros(40_000, dtype=np.int64))
    counts = np.bincount(drawn, minlength=8)
    assert counts[[1, 4, 5]].sum() == 0
    free = counts[[0, 2, 3, 6, 7]]
    assert np.all(np.abs(free / 40_000 - 0.2) < 0.01)


def test_batches_are_ordered_by_user_and_draw_users_uniformly() -> None:
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 50, 2_000), rng.integers(0, 40, 2_000)
    sampler = BprSampler(users, items, 40, seed=1)
    batch_users, _, _ = sampler.batch(50_000)
    assert np.all(np.diff(batch_users) >= 0)
    counts = np.bincount(batch_users, minlength=50)
    assert np.all(np.abs(counts / 50_000 - 1 / 50) < 0.005)
