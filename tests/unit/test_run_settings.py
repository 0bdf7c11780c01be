"""The run's rules in the library (recsys/run_settings.py): values parsed, defaults that depend on
another setting, settings the run would ignore refused, a TOML file read; as the command and
``recsys.run`` both apply them."""

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from recsys.errors import InvalidInput
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.run_settings import (
    parse_baselines,
    parse_cutoff,
    parse_cutoffs,
    parse_duration,
    read_settings_file,
    resolve,
)

JAN_2 = datetime(2020, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-02", JAN_2),
        ("2020-01-02T00:00:00", JAN_2),
        ("2020-01-02 00:00:00", JAN_2),
        ("2020-01-02T00:00:00Z", JAN_2),
        ("2020-01-02T02:00:00+02:00", JAN_2),
        ("2020-01-01T19:00:00-05:00", JAN_2),
        ("2020-01-02T00:00:00.250Z", JAN_2.replace(microsecond=250_000)),
        ("2020-01-02T03:30:00.5+03:30", JAN_2.replace(microsecond=500_000)),
        ("20200102T000000Z", JAN_2),
    ],
)
def test_an_iso_8601_cutoff_is_read_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_cutoff(text)
    assert parsed == expected and parsed.tzinfo is UTC
    assert parsed.isoformat().endswith("+00:00")  # as the version's params store it


def test_a_cutoff_from_a_settings_file_may_be_a_toml_date_or_time() -> None:
    assert parse_cutoff(date(2020, 1, 2)) == JAN_2
    assert parse_cutoff(datetime(2020, 1, 2)) == JAN_2


@pytest.mark.parametrize("text", ["yesterday", "2020-13-01", "2020-01-02T25:00", "", "02/01/2020"])
def test_a_cutoff_that_is_not_iso_8601_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=f"expected an ISO 8601 date or time .*got {text!r}"):
        parse_cutoff(text)


def test_durations_sizes_and_lists() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90 == parse_duration(90)
    with pytest.raises(ValueError, match="such as 90s, 25m or 2h, got '10 min'"):
        parse_duration("10 min")
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration("0s")
    assert parse_cutoffs("10,20") == (10, 20) == parse_cutoffs([10, 20])
    with pytest.raises(ValueError, match="at least 1"):
        parse_cutoffs("0")
    assert parse_baselines(["popularity", "gf-cf", "popularity"]) == ("popularity", "gf-cf")
    with pytest.raises(ValueError, match="expected popularity"):
        parse_baselines("gf-cf")


def test_dependent_defaults_apply_only_where_the_user_set_neither() -> None:
    budget = resolve({"model_version": "v", "max_train_time": "10m"}).config.train
    assert (budget.max_epochs, budget.max_train_seconds) == (None, 600.0)
    both = resolve({"model_version": "v", "max_train_time": "10m", "epochs": 5}).config.train
    assert both.max_epochs == 5
    warm = resolve({"model_version": "v", "warm_start": "production"}).config.train
    assert warm.learning_rate == WARM_START_LEARNING_RATE
    given = resolve({"model_version": "v", "warm_start": "v1", "learning_rate": 0.2}).config
    assert given.train.learning_rate == 0.2
    assert resolve({"model_version": "v"}).config.train == TrainConfig()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cutoff": "2020-01-02"}, "--cutoff does not apply to --split stratified"),
        ({"split": "leave-last", "test_ratio": 0.3}, "--test-ratio does not apply to --split"),
        (
            {"split": "temporal", "cutoff": "2020-01-02", "test_ratio": 0.2},
            "give --cutoff or --test-ratio, not both",
        ),
        ({"batch_size": 64, "steps_per_epoch": 4}, "give --batch-size or --steps-per-epoch"),
        ({"baselines": "popularity", "spectral_rank": 8}, "--spectral-rank set gf-cf"),
        ({"promote": "production"}, "give --promote ALIAS with --if-better"),
        ({"ray_workers": 2}, "--ray-workers need --ray ADDRESS"),
        ({"epochs": 2.5}, "epochs: expected a whole number, got 2.5"),
        ({"min_rating": True}, "min-rating: expected a number, got True"),
        ({"cutoff": "soon", "split": "temporal"}, "cutoff: expected an ISO 8601 date"),
        ({"epoch": 3}, "unknown epoch"),
    ],
)
def test_settings_the_run_would_ignore_or_cannot_read_are_refused(
    given: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        resolve({"model_version": "v", **given})


def test_a_settings_file_is_below_the_settings_given(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("epochs = 7\neval-k = [5, 10]\ncutoff = 2020-01-02T02:00:00+02:00\n")
    settings = resolve({"model_version": "v", "epochs": 3, "split": "temporal"}, file=path)
    assert settings.config.train.max_epochs == 3
    assert settings.config.eval_ks == (5, 10) and settings.config.cutoff == JAN_2
    path.write_text("epochs = 2.5\n")
    with pytest.raises(ValueError, match=r"epochs must be a whole number, got 2\.5"):
        read_settings_file(path)
    path.write_text("[run]\nepochs = 2\n")
    with pytest.raises(InvalidInput, match="unknown keys run"):
        resolve({"model_version": "v"}, file=path)


def test_importing_recsys_loads_no_tensorflow() -> None:
    code = "import sys, recsys, recsys.run_settings; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_l2_auto_chooses_the_weight_and_a_number_sets_it() -> None:
    auto = resolve({"model_version": "v", "l2": "auto"}).config.train
    assert auto.choose_l2 and auto.l2 == TrainConfig().l2
    given = resolve({"model_version": "v", "l2": "3e-4"}).config.train
    assert (given.choose_l2, given.l2) == (False, 3e-4)
    for bad in ("lots", True):
        with pytest.raises(InvalidInput, match="l2: expected a number or auto"):
            resolve({"model_version": "v", "l2": bad})


def test_negatives_are_chosen_by_default_and_a_number_sets_them() -> None:
    default = resolve({"model_version": "v"}).config.train
    assert default.choose_negatives and default.negative_candidates == 1
    assert resolve({"model_version": "v", "negatives": "auto"}).config.train == default
    given = resolve({"model_version": "v", "negatives": 4}).config.train
    assert (given.choose_negatives, given.negative_candidates) == (False, 4)
    for bad in (0, "some", 2.5, True):
        with pytest.raises(InvalidInput, match="negatives: expected a whole number of at least 1"):
            resolve({"model_version": "v", "negatives": bad})
