"""The rule every real-data test follows: skip where the data is absent, fail in CI instead."""

from pathlib import Path

import pytest

from tests.conftest import require_real_data


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
    with pytest.raises(pytest.skip.Exception, match="set RECSYS_X"):
        require_real_data(tmp_path / "absent", "set RECSYS_X")


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_data_fails_in_ci_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    missing = tmp_path / "absent"
    with pytest.raises(pytest.fail.Exception) as failed:
        require_real_data(missing, "set RECSYS_X")
    assert str(missing) in str(failed.value) and "CI must provide it" in str(failed.value)
