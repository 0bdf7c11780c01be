"""The memory estimate term by term, and the check that refuses a run over the limit."""

import os

import pytest

from recsys import memory
from recsys.errors import InvalidInput

#: 1,000 users, 500 items, 20,000 training interactions, 30,000 ratings read, dim 32.
SIZE = (1_000, 500, 20_000, 30_000, 32)


def _growth(**changes: int) -> int:
    """How much the estimate grows when the given inputs grow from ``SIZE``."""
    names = ("n_users", "n_items", "train_interactions", "ratings", "dim")
    base = dict(zip(names, SIZE, strict=True))
    return memory.estimate_bytes(**(base | changes)) - memory.estimate_bytes(**base)


def test_each_term_grows_with_its_input_at_its_documented_rate() -> None:
    """Per node and dimension 16 float32 tables (layer 0, Adam's two moments, the passes'
    layers), 160 bytes per training interaction, 24 per rating read, 1 GiB fixed."""
    assert _growth(n_users=1_001) == 32 * 4 * 16
    assert _growth(n_items=501) == 32 * 4 * 16
    assert _growth(dim=33) == (1_000 + 500) * 4 * 16
    assert _growth(train_interactions=20_001) == 160
    assert _growth(ratings=30_001) == 24
    assert memory.estimate_bytes(0, 0, 0, 0, 32) == 1 << 30


def test_the_terms_add_up_to_the_estimate() -> None:
    terms = memory.estimate_terms(*SIZE)
    assert terms == {
        "fixed": 1 << 30,
        "tables": 1_500 * 32 * 4 * 16,
        "interactions": 20_000 * 160,
        "ratings": 30_000 * 24,
        "warm_start": 0,
        "gf_cf": 0,
        "negatives": 0,
    }
    assert sum(terms.values()) == memory.estimate_bytes(*SIZE)


def test_a_warm_start_adds_a_carried_row_per_user_and_item() -> None:
    """Each carried row: dim float32 values and its int64 index, for every node at most."""
    cold = memory.estimate_bytes(*SIZE)
    warm = memory.estimate_bytes(*SIZE, warm_start=True)
    assert warm - cold == memory.estimate_terms(*SIZE, warm_start=True)["warm_start"]
    assert warm - cold == 1_500 * (32 * 4 + 8)


def test_the_check_refuses_one_byte_over_the_limit_only() -> None:
    memory.check_fits(1_000, limit=1_000)
    with pytest.raises(InvalidInput, match=r"more than the memory limit given"):
        memory.check_fits(1_001, limit=1_000)


def test_without_a_limit_the_check_uses_what_is_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 5 << 30)
    memory.check_fits(5 << 30)
    with pytest.raises(InvalidInput, match=r"more than the memory available \(5\.0 GiB\)"):
        memory.check_fits((5 << 30) + 1)


def test_what_is_available_is_a_plausible_share_of_this_machine() -> None:
    """Positive, and no more than the machine's RAM (a cgroup's limit is below it)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory.available_bytes() <= ram


def test_the_gf_cf_baseline_adds_its_svd_factors_products_and_block() -> None:
    """A rank-r filter: ARPACK's 2r + 1 float64 vectors of the smaller side, both sides'
    singular vectors, the low-pass factors (users + 2 · items) × r, 64 bytes per training
    interaction, a 256 MiB dense block and a group's two sparse products of 2^24 entries."""
    users, items, interactions, rank = 1_000, 500, 20_000, 16
    added = memory.estimate_bytes(*SIZE, spectral_rank=rank) - memory.estimate_bytes(*SIZE)
    svd = (2 * rank + 1) * items * 8 + (users + items) * rank * 4
    factors = (users + 2 * items) * rank * 4
    assert added == svd + factors + interactions * 64 + (1 << 28) + 2 * (1 << 24) * 12
    assert added == memory.estimate_terms(*SIZE, spectral_rank=rank)["gf_cf"]


def test_negative_candidates_add_the_samplers_draws_and_a_scored_block() -> None:
    """A batch of 1,000 triples: 40 bytes per candidate drawn, and with more than one candidate
    a batch × (dim + candidates) float32 block the step scores them in."""
    assert memory.estimate_terms(*SIZE, batch=1_000)["negatives"] == 1_000 * 40
    four = memory.estimate_terms(*SIZE, batch=1_000, negative_candidates=4)["negatives"]
    assert four == 1_000 * 4 * 40 + 1_000 * (32 + 4) * 4
