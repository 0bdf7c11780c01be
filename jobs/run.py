"""``recsys-job run``: train, evaluate and publish one model version."""

import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from recsys.errors import InvalidInput
from recsys.model.settings import TrainConfig
from recsys_jobs.context import JobContext, pass_job

if TYPE_CHECKING:
    from recsys.pipeline import RunConfig, RunResult

_TRAIN = TrainConfig()  # the defaults every option below shows

_OPTION_NAMES = {
    "model_version", "epochs", "dim", "layers", "batch_size", "learning_rate", "l2", "top_k",
    "eval_k", "split", "test_ratio", "cutoff", "val_ratio", "patience", "min_rating", "seed",
    "replace",
}  # fmt: skip


def _load_config(ctx: click.Context, _param: click.Parameter, path: Path | None) -> Path | None:
    """Use a TOML file's keys (the option names, - or _) as defaults; options still override."""
    if path is None:
        return None
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{path}: {exc}") from None
    settings = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(settings) - _OPTION_NAMES)
    if unknown:
        raise click.BadParameter(f"{path}: unknown keys {', '.join(unknown)}")
    _check_numbers(path, settings, ctx.command)
    if isinstance(settings.get("eval_k"), list):
        settings["eval_k"] = ",".join(str(k) for k in settings["eval_k"])
    ctx.default_map = {**(ctx.default_map or {}), **settings}
    return path


def _check_numbers(path: Path, settings: dict[str, object], command: click.Command) -> None:
    """Refuse TOML values click would coerce without a word: ``epochs = 2.7`` would train 2
    epochs and ``min-rating = true`` count ratings of at least 1."""
    kinds = {param.name: param.type for param in command.params}
    for key, value in settings.items():
        whole = isinstance(kinds[key], click.types.IntParamType)
        if not whole and not isinstance(kinds[key], click.types.FloatParamType):
            continue
        fraction = isinstance(value, float) and not value.is_integer()
        if isinstance(value, bool) or (whole and fraction):
            expected = "a whole number" if whole else "a number"
            name = key.replace("_", "-")
            raise click.BadParameter(f"{path}: {name} must be {expected}, got {value!r}")


class _Cutoffs(click.ParamType):
    """Comma-separated cut-offs such as ``10,20``."""

    name = "K[,K...]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        try:
            values = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"expected comma-separated whole numbers, got {value!r}", param, ctx)
        if not values or min(values) < 1:
            self.fail(f"cut-offs must be whole numbers of at least 1, got {value!r}", param, ctx)
        return values


def _utc(_ctx: click.Context, _param: click.Parameter, value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


@click.command()
@click.option(
    "--model-version", "model_version", required=True, help="Version name to publish, e.g. v3."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    callback=_load_config,
    is_eager=True,
    expose_value=False,
    help='TOML file with any of these options (e.g. epochs = 30, split = "temporal").',
)
@click.option("--epochs", default=_TRAIN.max_epochs, show_default=True, help="Training epochs.")
@click.option("--dim", default=_TRAIN.dim, show_default=True, help="Embedding size.")
@click.option("--layers", default=_TRAIN.n_layers, show_default=True, help="Propagation layers.")
@click.option(
    "--batch-size", default=_TRAIN.batch_size, show_default=True, help="BPR triples per step."
)
@click.option(
    "--learning-rate",
    default=_TRAIN.learning_rate,
    show_default=True,
    help="Adam's initial rate (half-cosine decay to 0 over the epochs).",
)
@click.option(
    "--l2",
    default=_TRAIN.l2,
    show_default=True,
    help="L2 weight on the batch's layer-0 embeddings.",
)
@click.option("--top-k", default=10, show_default=True, help="Recommendations written per user.")
@click.option(
    "--eval-k", type=_Cutoffs(), default="10,20", show_default=True, help="Evaluation cut-offs."
)
@click.option(
    "--split",
    type=click.Choice(["stratified", "temporal", "leave-last"]),
    default="stratified",
    show_default=True,
    help="stratified: per-user random test share; temporal: a global time cut; leave-last: "
    "each user's latest rating.",
)
@click.option(
    "--test-ratio", default=0.25, show_default=True, help="Test share (stratified, temporal)."
)
@click.option(
    "--cutoff",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    callback=_utc,
    help="Temporal split at this UTC time instead of a ratio.",
)
@click.option(
    "--val-ratio",
    default=_TRAIN.val_ratio,
    show_default=True,
    help="Validation share carved from training for early stopping (0 = none).",
)
@click.option(
    "--patience",
    default=_TRAIN.patience,
    show_default=True,
    help="Epochs without a better validation NDCG before stopping.",
)
@click.option(
    "--min-rating", type=float, help="Count only ratings ≥ this as interactions.  [default: all]"
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed for split, initialisation and sampling."
)
@click.option("--replace", is_flag=True, help="Replace an already published version atomically.")
@pass_job
def run(job: JobContext, model_version: str, **options: object) -> None:
    """Train LightGCN, evaluate it against popularity, and publish MODEL_VERSION."""
    _refuse_ignored_split_options(click.get_current_context(), str(options["split"]))
    engine = job.engine()  # before TensorFlow loads, so a database problem shows in seconds
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    from recsys.pipeline import run as run_pipeline

    config = _run_config(options)
    click.echo(f"run {model_version}: {_describe(config)}")
    result = run_pipeline(
        engine, model_version, config, replace=bool(options["replace"]), report=click.echo
    )
    click.echo(_summary(result))


#: Where an option's value came from when the user set it (not click's default).
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)


def _refuse_ignored_split_options(ctx: click.Context, split: str) -> None:
    """Refuse a split option (given on the command line, in the environment or in --config) that
    the chosen split would ignore, rather than run as if it had mattered."""
    given = {
        name
        for name in ("test_ratio", "cutoff")
        if ctx.get_parameter_source(name) in _GIVEN  # None under ctx.invoke (demo)
    }
    if split == "temporal":
        if given == {"test_ratio", "cutoff"}:
            raise InvalidInput("invalid run options: give --cutoff or --test-ratio, not both")
        return
    # leave-last holds out each user's last interaction; stratified takes a ratio, not a time.
    ignored = sorted(given if split == "leave-last" else given - {"test_ratio"})
    if ignored:
        names = " and ".join(f"--{name.replace('_', '-')}" for name in ignored)
        verb = "does" if len(ignored) == 1 else "do"
        raise InvalidInput(f"invalid run options: {names} {verb} not apply to --split {split}")


def _run_config(options: dict[str, object]) -> "RunConfig":
    # Imported here, not at the top: TensorFlow takes seconds to load and only `run` needs it.
    from recsys.pipeline import RunConfig

    overrides = {
        "max_epochs": options["epochs"],
        "dim": options["dim"],
        "n_layers": options["layers"],
        "batch_size": options["batch_size"],
        "learning_rate": options["learning_rate"],
        "l2": options["l2"],
        "val_ratio": options["val_ratio"],
        "patience": options["patience"],
        "seed": options["seed"],
    }
    train = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    return RunConfig(
        train=train,
        split=str(options["split"]),
        test_ratio=float(options["test_ratio"]),
        cutoff=options["cutoff"],
        top_k=int(options["top_k"]),
        eval_ks=options["eval_k"],
        min_rating=options["min_rating"],
    )


def _describe(config: "RunConfig") -> str:
    t = config.train
    return (
        f"{config.split} split, dim {t.dim}, {t.n_layers} layers, batch {t.batch_size}, "
        f"lr {t.learning_rate:g}, l2 {t.l2:g}, ≤{t.max_epochs} epochs, seed {t.seed}"
    )


def _summary(result: "RunResult") -> str:
    evaluation = result.evaluation
    table = evaluation.pivot_table(index=["metric", "k"], columns="model", values="value")
    lines = [f"published {result.version}: best epoch {result.best_epoch}"]
    lines.append(table.to_string(float_format=lambda v: f"{v:.4f}"))
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phase_seconds.items())
    lines.append(f"seconds: {phases}; total {sum(result.phase_seconds.values()):.1f} s")
    return "\n".join(lines)
