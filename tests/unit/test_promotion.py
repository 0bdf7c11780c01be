"""The promotion gate's options and decision (recsys/versions/promotion.py); carrying it out is
tested against PostgreSQL in tests/integration/test_nightly.py."""

import pytest

from recsys.errors import InvalidInput
from recsys.evaluation.evaluate import EvaluationRow
from recsys.versions.promotion import Gate, decide


def test_a_gate_reads_metric_cutoff_and_tolerance() -> None:
    assert Gate.parse("production", "ndcg@10") == Gate("production", "ndcg", 10, 0.0)
    assert Gate.parse("prod", "MAP@20:0.005") == Gate("prod", "map", 20, 0.005)


@pytest.mark.parametrize("text", ["ndcg", "ndcg@", "@10", "ndcg@10:", "ndcg@10:-0.1", "ndcg@10:x"])
def test_a_malformed_gate_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="METRIC@K"):
        Gate.parse("production", text)


def test_a_bad_alias_name_is_refused() -> None:
    with pytest.raises(InvalidInput, match="alias"):
        Gate.parse("no spaces", "ndcg@10")


def test_a_gate_on_a_figure_the_run_does_not_compute_is_refused() -> None:
    Gate("p", "ndcg", 10).check((10, 20))
    with pytest.raises(InvalidInput, match="metric 'auc' is not computed"):
        Gate("p", "auc", 10).check((10, 20))
    with pytest.raises(InvalidInput, match="k 5 is not an evaluation cut-off"):
        Gate("p", "ndcg", 5).check((10, 20))


def _rows(model: float, champion: float | None) -> list[EvaluationRow]:
    rows = [
        EvaluationRow("model", "ndcg", 10, model, 5),
        EvaluationRow("baseline", "ndcg", 10, 0.1, 5),
    ]
    if champion is not None:
        rows.append(EvaluationRow("champion", "ndcg", 10, champion, 5))
    return rows


@pytest.mark.parametrize(
    ("model", "champion", "tolerance", "promoted"),
    [
        (0.31, 0.30, 0.0, True),
        (0.30, 0.30, 0.0, False),  # a tie does not beat the champion
        (0.29, 0.30, 0.0, False),
        (0.29, 0.30, 0.02, True),  # within the tolerance
        (0.27, 0.30, 0.02, False),
    ],
)
def test_the_new_version_must_beat_the_champion_less_the_tolerance(
    model: float, champion: float, tolerance: float, promoted: bool
) -> None:
    decision = decide(Gate("p", "ndcg", 10, tolerance), _rows(model, champion), "v1", None)
    assert decision.promoted is promoted
    assert (decision.value, decision.champion_value, decision.champion) == (model, champion, "v1")


def test_without_a_champion_it_is_promoted_and_with_a_skipped_one_it_is_not() -> None:
    first = decide(Gate("p", "ndcg", 10), _rows(0.2, None), None, None)
    assert first.promoted and "nothing to beat" in first.reason
    skipped = decide(Gate("p", "ndcg", 10), _rows(0.9, None), "v1", "it may have trained on them")
    assert not skipped.promoted and skipped.champion_value is None
    assert "it may have trained on them" in skipped.reason
