"""The rule every real-data test follows: skip where the data is absent, fail in CI instead."""

from pathlib import Path

import pytest

from tests.conftest import require_real_data


def _outcome(path: Path) -> BaseException | None:
    """What ``require_real_data`` raised for ``path``: pytest's skip and fail are both
    BaseExceptions, and ``pytest.raises`` of one would let the other through as this test's own
    outcome (a skip here would read as a pass)."""
    try:
        require_real_data(path, "set RECSYS_X")
    except BaseException as exc:
        return exc
    return None


def test_present_data_is_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_real_data(tmp_path, "hint") == tmp_path


@pytest.mark.parametrize("ci", [None, "", "0", "false", "False"])
def test_missing_data_skips_outside_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    outcome = _outcome(tmp_path / "absent")
    assert type(outcome) is pytest.skip.Exception
    assert "set RECSYS_X" in str(outcome)


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_data_fails_in_ci_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    missing = tmp_path / "absent"
    outcome = _outcome(missing)
    assert type(outcome) is pytest.fail.Exception
    assert str(missing) in str(outcome) and "CI must provide it" in str(outcome)


def test_the_ml100k_fixture_follows_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The fixture real-data tests take goes through the rule, not a skip of its own."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("RECSYS_ML100K", str(tmp_path / "absent"))
    try:
        request.getfixturevalue("ml100k")
    except BaseException as exc:
        outcome: BaseException | None = exc
    else:
        outcome = None
    assert type(outcome) is pytest.fail.Exception
    assert "RECSYS_ML100K" in str(outcome)
