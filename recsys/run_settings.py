"""A run's settings resolved in one place, for ``recsys-job run``, ``recsys.run(...)`` and benches.

Settings are named as ``recsys-job run``'s options (``max_train_time``, ``eval_k``, ...; ``-`` or
``_``). :func:`resolve` takes those the user set (on the command line, in the environment, in a
TOML file or as keyword arguments) and applies the run's rules: values parsed (durations such as
``25m``, sizes such as ``8G``, ISO 8601 cut-offs, cut-off and baseline lists), the other
settings' defaults, the defaults that depend on another setting (a time budget decides how many
epochs fit; a warm start trains at its own rate), and the refusal of settings the run would
ignore. The values themselves are checked by :meth:`RunConfig.check`, which the pipeline runs
before anything else. TensorFlow-free, so the CLI can refuse options without loading it.

Public API:
    resolve(given, *, file=None) -> RunSettings
    read_settings_file(path, known=OPTIONS) -> dict   a TOML file's settings, checked
    RunSettings(version, config, replace, memory_limit, judging, keep, ray)
    RaySettings(address, workers, worker_cpus, worker_gpus)  .scoring(on_shard)  .joined()
    parse_duration, parse_cutoff, parse_cutoffs, parse_baselines, parse_bytes, parse_l2,
    parse_negatives: raise ValueError (the last two also take AUTO)
    OPTIONS: every setting's parser
"""

import dataclasses
import re
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.errors import InvalidInput
from recsys.memory import parse_size
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.run_config import BASELINES, GF_CF, POPULARITY, SPLITS, RunConfig, Split
from recsys.versions.aliases import DEFAULT_ALIAS
from recsys.versions.promotion import Gate, Judging

if TYPE_CHECKING:
    from recsys.scale_out.sharded_scoring import RayScoring

_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(value: object) -> float:
    """Seconds of a duration such as ``90s``, ``25m``, ``2h`` or ``1h30m`` (a bare number is
    seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        parts = _DURATION_PART.findall(text)
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _SECONDS_PER[u] for n, u in parts)
        else:
            raise ValueError(f"expected a duration such as 90s, 25m or 2h, got {value!r}")
    if not seconds > 0:
        raise ValueError(f"the duration must be positive, got {value!r}")
    return seconds


def parse_bytes(value: object) -> int:
    """A memory size such as ``8G`` or ``512M`` (or a number of bytes), in bytes."""
    return value if isinstance(value, int) else parse_size(str(value))


def parse_cutoff(value: object) -> datetime:
    """An ISO 8601 date or time (``2020-01-02``, ``2020-01-02T00:00:00Z``, ``…+02:00``,
    fractional seconds) as a UTC time; one without a zone is taken as UTC."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(
                "expected an ISO 8601 date or time such as 2020-01-02, 2020-01-02T00:00:00Z or "
                f"2020-01-02T02:00:00+02:00, got {value!r}"
            ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_cutoffs(value: object) -> tuple[int, ...]:
    """Evaluation cut-offs such as ``10,20`` (or a list of numbers)."""
    if isinstance(value, tuple | list):
        parts = [str(part) for part in value]
    else:
        parts = str(value).split(",")
    try:
        values = tuple(int(part) for part in parts if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated whole numbers, got {value!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"cut-offs must be whole numbers of at least 1, got {value!r}")
    return values


#: ``--l2 auto``, ``--negatives auto``: the setting chosen from the data by short validation
#: trials (recsys/model/setting_choice.py).
AUTO = "auto"


def parse_l2(value: object) -> float | str:
    """An L2 weight (RunConfig.check checks its range), or ``auto``."""
    if value == AUTO:
        return AUTO
    try:
        return _number(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number or {AUTO}, got {value!r}") from None


def parse_negatives(value: object) -> int | str:
    """Negative candidates per triple (a whole number of at least 1), or ``auto``."""
    if value == AUTO:
        return AUTO
    try:
        return _whole(1).parse(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"expected a whole number of at least 1 or {AUTO}, got {value!r}"
        ) from None


def parse_baselines(value: object) -> tuple[str, ...]:
    """Baseline names such as ``popularity,gf-cf`` (or a list of names)."""
    parts = [str(part) for part in value] if isinstance(value, tuple | list) else str(value)
    names = [part.strip() for part in (parts.split(",") if isinstance(parts, str) else parts)]
    names = [name for name in names if name]
    if any(name not in BASELINES for name in names) or POPULARITY not in names:
        raise ValueError(
            f"expected {POPULARITY} (always scored: the reference of every lift), optionally "
            f"with {GF_CF}, got {value!r}"
        )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class _Parser:
    """How a setting's value is read from Python or a settings file."""

    parse: Callable[[Any], Any]
    #: ``whole`` or ``number`` for numbers, which a settings file must not hold as booleans
    #: (nor fractions, for whole numbers); None for other values.
    number: str | None = None


def _whole(minimum: int | None = None) -> _Parser:
    def parse(value: object) -> int:
        fraction = isinstance(value, float) and not value.is_integer()
        if isinstance(value, bool) or fraction:
            raise ValueError(f"expected a whole number, got {value!r}")
        number = int(value)  # type: ignore[call-overload]
        if minimum is not None and number < minimum:
            raise ValueError(f"expected a whole number of at least {minimum}, got {value!r}")
        return number

    return _Parser(parse, "whole")


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> _Parser:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return _Parser(parse)


_TEXT = _Parser(str)
_NUMBER = _Parser(_number, "number")

#: Every setting of a run, by the name of its ``recsys-job run`` option (``-`` read as ``_``).
OPTIONS: dict[str, _Parser] = {
    "model_version": _TEXT,
    **dict.fromkeys(("epochs", "dim", "layers", "steps_per_epoch", "batch_size"), _whole()),
    **dict.fromkeys(("patience", "seed", "top_k", "similar_k"), _whole()),
    **dict.fromkeys(("spectral_rank", "keep", "ray_workers", "ray_worker_cpus"), _whole(1)),
    **dict.fromkeys(("learning_rate", "test_ratio", "val_ratio", "min_rating"), _NUMBER),
    "l2": _Parser(parse_l2),
    "negatives": _Parser(parse_negatives),
    **dict.fromkeys(("spectral_alpha", "ray_worker_gpus"), _NUMBER),
    "max_train_time": _Parser(parse_duration),
    "memory_limit": _Parser(parse_bytes),
    "cutoff": _Parser(parse_cutoff),
    "eval_k": _Parser(parse_cutoffs),
    "baselines": _Parser(parse_baselines),
    "split": _choice(SPLITS),
    **dict.fromkeys(("spectral_start", "refit", "replace"), _Parser(_flag)),
    **dict.fromkeys(("warm_start", "compare_with", "promote", "if_better", "ray"), _TEXT),
}

#: Settings whose TrainConfig field has another name; every other training setting is named as
#: its field. The RunConfig settings are named as their fields but ``eval_k`` (``eval_ks``).
_TRAIN_FIELDS = {
    "epochs": "max_epochs",
    "layers": "n_layers",
    "max_train_time": "max_train_seconds",
    **{name: name for name in ("dim", "steps_per_epoch", "batch_size", "learning_rate", "l2")},
    **{name: name for name in ("val_ratio", "patience", "seed", "spectral_start")},
    "negatives": "negative_candidates",
}
#: Training settings that ``auto`` leaves to the trials, and the TrainConfig flag that asks.
_AUTO_FLAGS = {"l2": "choose_l2", "negative_candidates": "choose_negatives"}
_RUN_FIELDS = {
    name: name
    for name in (
        "split",
        "test_ratio",
        "cutoff",
        "top_k",
        "similar_k",
        "min_rating",
        "refit",
        "warm_start",
        "baselines",
        "spectral_rank",
        "spectral_alpha",
    )
} | {"eval_k": "eval_ks"}
_RAY_OPTIONS = ("ray_workers", "ray_worker_cpus", "ray_worker_gpus")


def read_settings_file(path: Path, known: Collection[str] = tuple(OPTIONS)) -> dict[str, object]:
    """A TOML file's settings (keys are option names, ``-`` or ``_``), as it holds them; raises
    ValueError naming the file when it cannot be read, holds a key not in ``known``, or a number
    that would be read as another (``epochs = 2.7`` as 2, ``min-rating = true`` as 1)."""
    try:
        values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    settings = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(unknown)}")
    for key, value in settings.items():
        number = OPTIONS[key].number if key in OPTIONS else None
        fraction = isinstance(value, float) and not value.is_integer()
        if number and (isinstance(value, bool) or (number == "whole" and fraction)):
            expected = "a whole number" if number == "whole" else "a number"
            name = key.replace("_", "-")
            raise ValueError(f"{path}: {name} must be {expected}, got {value!r}")
    return settings


@dataclass(frozen=True)
class RaySettings:
    """``--ray``: score and write the recommendations in shards on a Ray cluster."""

    address: str
    workers: int | None = None
    worker_cpus: int = 1
    worker_gpus: float = 0.0

    def scoring(self, on_shard: Callable[[int, int], None] | None = None) -> "RayScoring":
        """The pipeline's ``scale_out``; refused (InvalidInput) when the ray package is missing."""
        from recsys.scale_out.ray_cluster import import_ray

        import_ray()
        from recsys.scale_out.sharded_scoring import RayScoring

        return RayScoring(
            workers=self.workers,
            worker_cpus=self.worker_cpus,
            worker_gpus=self.worker_gpus,
            on_shard=on_shard,
        )

    @contextmanager
    def joined(self) -> Iterator[str]:
        """Ray joined (or started) for the run; yields what it is, to say so."""
        from recsys.scale_out.ray_cluster import joined

        with joined(self.address) as cluster:
            yield cluster


@dataclass(frozen=True)
class RunSettings:
    """A run, resolved: what the pipeline is given, and what happens around it."""

    version: str
    config: RunConfig = field(default_factory=RunConfig)
    replace: bool = False
    #: Bytes the run's memory estimate must fit in (None: the memory available).
    memory_limit: int | None = None
    judging: Judging = field(default_factory=Judging)
    #: Published versions to keep after publishing (None: no prune).
    keep: int | None = None
    ray: RaySettings | None = None


def resolve(given: Mapping[str, object], *, file: Path | None = None) -> RunSettings:
    """The run that the settings the user set describe (``model_version`` among them), with a
    settings ``file``'s below them; raises InvalidInput on a value it cannot read or a setting
    the run would ignore."""
    settings = {key.replace("-", "_"): value for key, value in given.items() if value is not None}
    if file is not None:
        try:
            settings = read_settings_file(file) | settings
        except ValueError as exc:
            raise InvalidInput(f"invalid run settings: {exc}") from None
    unknown = sorted(set(settings) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"invalid run settings: unknown {', '.join(unknown)}")
    values = {name: _parsed(name, value) for name, value in settings.items()}
    if "model_version" not in values:
        raise InvalidInput("invalid run settings: give the version to publish (model_version)")
    config = _with_dependent_defaults(_run_config(values), values)
    _refuse_ignored_options(config, values)
    return RunSettings(
        values["model_version"],
        config,
        replace=values.get("replace", False),
        memory_limit=values.get("memory_limit"),
        judging=_judging(
            values.get("compare_with"), values.get("promote"), values.get("if_better")
        ),
        keep=values.get("keep"),
        ray=_ray(values),
    )


def _parsed(name: str, value: object) -> object:
    try:
        return OPTIONS[name].parse(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"invalid run settings: {name.replace('_', '-')}: {exc}") from None


def _run_config(values: Mapping[str, Any]) -> RunConfig:
    train = {field: values[name] for name, field in _TRAIN_FIELDS.items() if name in values}
    for setting, flag in _AUTO_FLAGS.items():
        if setting in train:
            train[flag] = train[setting] == AUTO
            if train[flag]:
                del train[setting]
    run = {field: values[name] for name, field in _RUN_FIELDS.items() if name in values}
    return RunConfig(train=TrainConfig(**train), **run)


def _with_dependent_defaults(config: RunConfig, given: Collection[str]) -> RunConfig:
    """Training defaults that depend on another setting, where the user set neither themselves:
    a time budget decides how many epochs fit; a warm start trains at its own rate."""
    changes: dict[str, object] = {}
    if config.train.max_train_seconds and "epochs" not in given:
        changes["max_epochs"] = None
    if config.warm_start and "learning_rate" not in given:
        changes["learning_rate"] = WARM_START_LEARNING_RATE
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def _option(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _refuse_ignored_options(config: RunConfig, given: Collection[str]) -> None:
    """Refuse a setting the run would ignore, rather than run as if it had mattered."""
    if {"batch_size", "steps_per_epoch"} <= set(given):
        raise InvalidInput("invalid run options: give --batch-size or --steps-per-epoch, not both")
    if {"test_ratio", "cutoff"} <= set(given) and config.split == Split.TEMPORAL:
        raise InvalidInput("invalid run options: give --cutoff or --test-ratio, not both")
    ignored = [
        _option(name)
        for name, used in (("test_ratio", config.uses_test_ratio), ("cutoff", config.uses_cutoff))
        if name in given and not used
    ]
    spectral = [name for name in ("spectral_rank", "spectral_alpha") if name in given]
    if spectral and not config.gf_cf:
        names = " and ".join(map(_option, spectral))
        raise InvalidInput(
            f"invalid run options: {names} set {GF_CF}, which --baselines leaves out"
        )
    if ignored:
        names, verb = " and ".join(ignored), "does" if len(ignored) == 1 else "do"
        raise InvalidInput(
            f"invalid run options: {names} {verb} not apply to --split {config.split}"
        )


def _judging(compare_with: str | None, promote: str | None, if_better: str | None) -> Judging:
    """The champion and the gate: the champion defaults to the gate's alias, else production,
    and is only required to exist when named."""
    if (promote is None) != (if_better is None):
        raise InvalidInput(
            "invalid run options: give --promote ALIAS with --if-better METRIC@K (to move an "
            "alias unconditionally, use `recsys-job promote`)"
        )
    gate = Gate.parse(promote, if_better) if promote and if_better else None
    default = gate.alias if gate else DEFAULT_ALIAS
    return Judging(compare_with or default, required=compare_with is not None, gate=gate)


def _ray(values: Mapping[str, Any]) -> RaySettings | None:
    """The Ray settings; a --ray-* setting without --ray is refused."""
    if values.get("ray") is None:
        given = [_option(name) for name in _RAY_OPTIONS if name in values]
        if given:
            raise InvalidInput(f"invalid run options: {', '.join(given)} need --ray ADDRESS")
        return None
    ray = {name.removeprefix("ray_"): values[name] for name in _RAY_OPTIONS if name in values}
    return RaySettings(values["ray"], **ray)
