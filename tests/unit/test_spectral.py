"""The spectrum of R̂, the GF-CF filter built on it and LightGCN's spectral start, each against
dense numpy computed here (never the product's code)."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data import spectrum
from recsys.data.graph import normalized_interactions
from recsys.data.spectrum import max_rank, top_singular
from recsys.evaluation.spectral import filter_rank, spectral_filter, spectral_top_k
from recsys.model.settings import TrainConfig
from recsys.model.spectral_start import spectral_start
from recsys.model.train import fit
from recsys.model.warm_start import CarriedRows, InitialState


def _planted(n_users: int, n_items: int, rank: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Interactions drawn from ``rank`` latent groups (a clear gap after ``rank`` directions)."""
    rng = np.random.default_rng(seed)
    user_group = rng.integers(0, rank, n_users)
    item_group = rng.integers(0, rank, n_items)
    likes = np.where(user_group[:, None] == item_group[None, :], 0.3, 0.02)
    users, items = np.nonzero(rng.random((n_users, n_items)) < likes)
    return users, items


def _dense_normalized(users, items, n_users, n_items) -> tuple[np.ndarray, np.ndarray]:
    r = np.zeros((n_users, n_items))
    r[users, items] = 1.0
    du, di = r.sum(axis=1), r.sum(axis=0)
    with np.errstate(divide="ignore"):
        su, si = np.where(du > 0, du**-0.5, 0), np.where(di > 0, di**-0.5, 0)
    return r, r * su[:, None] * si[None, :]


def _subspace_gap(a: np.ndarray, b: np.ndarray) -> float:
    """How far the column space of ``b`` (orthonormal) lies outside that of ``a``."""
    return float(np.linalg.norm(b - a @ (a.T @ b)))


@pytest.mark.parametrize("dense", [True, False], ids=["lapack", "arpack"])
def test_top_singular_finds_the_dense_svds_subspace(monkeypatch, dense: bool) -> None:
    if not dense:
        monkeypatch.setattr(spectrum, "DENSE_ENTRIES", 0)
    users, items = _planted(300, 200, 6)
    _, normalized = _dense_normalized(users, items, 300, 200)
    left, values, right = np.linalg.svd(normalized)
    found = top_singular(normalized_interactions(users, items, 300, 200), 6, seed=3)
    assert found.values == pytest.approx(values[:6], abs=1e-4)
    assert _subspace_gap(right[:6].T, found.items) < 5e-3
    assert _subspace_gap(left[:, :6], found.users) < 5e-3
    # R̂ v_j = σ_j u_j: the two sides are a matched pair, signs included.
    assert np.abs(normalized @ found.items - found.users * found.values).max() < 5e-3


def test_top_singular_refuses_a_rank_the_data_cannot_support() -> None:
    matrix = normalized_interactions(np.array([0, 1, 2]), np.array([0, 1, 1]), 3, 2)
    assert max_rank(3, 2) == 1
    with pytest.raises(ValueError, match="rank 2 is out of range for a 3 × 2 matrix"):
        top_singular(matrix, 2)


def test_filter_rank_takes_the_papers_rank_where_the_data_allows() -> None:
    assert filter_rank(None, 50_000, 80_000) == 256
    assert filter_rank(None, 120, 150) == 30  # a quarter of the smaller side
    assert filter_rank(64, 50_000, 80_000) == 64


def test_gf_cf_scores_are_the_papers_formula() -> None:
    """s_u = r_u R̂ᵀR̂ + α r_u D_i^-1/2 V Vᵀ D_i^1/2, and its top-k skips training items."""
    n_users, n_items, rank, alpha = 60, 40, 4, 0.7
    users, items = _planted(n_users, n_items, rank, seed=1)
    r, normalized = _dense_normalized(users, items, n_users, n_items)
    _, _, right = np.linalg.svd(normalized)
    basis = right[:rank].T
    degree = r.sum(axis=0)
    expected = r @ normalized.T @ normalized + alpha * (
        (r / np.sqrt(degree)) @ basis @ (basis.T * np.sqrt(degree))
    )
    fitted = spectral_filter(users, items, n_users, n_items, rank, alpha)
    everyone = np.arange(n_users)
    user_side, item_side = fitted.low_pass(everyone)
    scores = fitted.linear(everyone) + user_side @ item_side.T
    assert scores == pytest.approx(expected, abs=1e-5)

    exclude = sp.csr_matrix(r.astype(bool))
    ranked = spectral_top_k(fitted, 5, exclude, np.array([3, 0]))
    for row, user in zip(ranked, (3, 0), strict=True):
        masked = np.where(r[user] > 0, -np.inf, expected[user])
        assert list(row) == list(np.argsort(-masked, kind="stable")[:5])


def test_spectral_start_rows_are_scaled_singular_vectors() -> None:
    n_users, n_items, dim = 80, 50, 8
    users, items = _planted(n_users, n_items, 4, seed=2)
    graph = normalized_interactions(users, items, n_users, n_items)
    start = spectral_start(graph, dim)
    assert start is not None
    for rows, n in ((start.users, n_users), (start.items, n_items)):
        assert list(rows.index) == list(range(n))
        # Mean squared row norm as the cold start's N(0, 0.1²): dim × 0.01.
        assert np.mean(np.sum(rows.rows**2, axis=1)) == pytest.approx(dim * 0.01, rel=1e-4)
    _, normalized = _dense_normalized(users, items, n_users, n_items)
    _, _, right = np.linalg.svd(normalized)
    scaled = start.items.rows / np.linalg.norm(start.items.rows, axis=0)
    assert _subspace_gap(right[:dim].T, scaled) < 1e-3
    # Too few directions for the model's width: a cold start instead.
    assert spectral_start(graph, max_rank(n_users, n_items) + 1) is None


def test_fit_records_where_training_started() -> None:
    users, items = _planted(40, 30, 3, seed=4)
    config = TrainConfig(dim=4, n_layers=1, max_epochs=1)
    assert fit(users, items, 40, 30, config).start == "spectral"
    cold = TrainConfig(dim=4, n_layers=1, max_epochs=1, spectral_start=False)
    assert fit(users, items, 40, 30, cold).start == "cold"
    carried = CarriedRows(np.array([0]), np.ones((1, 4), np.float32))
    warm = fit(users, items, 40, 30, config, initial=InitialState(carried, carried))
    assert (warm.start, warm.start_seconds) == ("warm", 0.0)


def test_the_linear_filter_is_the_same_in_groups_of_bounded_fan_out(monkeypatch) -> None:
    """Users taken a few at a time (their items' degrees summing to at most FAN_OUT) give the
    same block as all at once."""
    users, items = _planted(50, 40, 3, seed=5)
    fitted = spectral_filter(users, items, 50, 40, 2)
    whole = fitted.linear(np.arange(50))
    monkeypatch.setattr("recsys.evaluation.spectral.FAN_OUT", 100)
    assert fitted.linear(np.arange(50)) == pytest.approx(whole, abs=1e-6)
    assert fitted.linear(np.arange(0)).shape == (0, 40)
