"""``recsys-job run``: train, evaluate and publish one model version."""

import dataclasses
import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import sqlalchemy as sa
from click.core import ParameterSource

from recsys.errors import PUBLISHED_NOT_PROMOTED, InvalidInput
from recsys.memory import parse_size
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.run_config import BASELINES, GF_CF, POPULARITY, SPLITS, RunConfig
from recsys.storage.database import has_password, parse_url
from recsys.versions.aliases import DEFAULT_ALIAS
from recsys.versions.promotion import Gate, Judging
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option
from recsys_jobs.progress import count_bar, epoch_bars
from recsys_jobs.prune import prune_after_publish

if TYPE_CHECKING:
    from recsys.pipeline import RunResult
    from recsys.scale_out.sharded_scoring import RayScoring

_TRAIN = TrainConfig()  # the defaults every option below shows
_RUN = RunConfig()

#: Options whose TrainConfig field has another name; every other training option is named as its
#: field. The remaining options are RunConfig fields (``eval_k`` → ``eval_ks``) or act on the run.
_TRAIN_FIELDS = {
    "epochs": "max_epochs",
    "layers": "n_layers",
    "max_train_time": "max_train_seconds",
    **{name: name for name in ("dim", "steps_per_epoch", "batch_size", "learning_rate", "l2")},
    **{name: name for name in ("val_ratio", "patience", "seed", "spectral_start")},
}
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


def _load_config(ctx: click.Context, _param: click.Parameter, path: Path | None) -> Path | None:
    """Use a TOML file's keys (the option names, - or _) as defaults; options still override."""
    if path is None:
        return None
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{path}: {exc}") from None
    settings = {key.replace("-", "_"): value for key, value in values.items()}
    known = {param.name for param in ctx.command.params if param.expose_value}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise click.BadParameter(f"{path}: unknown keys {', '.join(unknown)}")
    _check_numbers(path, settings, ctx.command)
    for key in ("eval_k", "baselines"):
        if isinstance(settings.get(key), list):
            settings[key] = ",".join(str(value) for value in settings[key])
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


class _Baselines(click.ParamType):
    """Comma-separated baseline names such as ``popularity,gf-cf``."""

    name = "NAME[,NAME...]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        names = [part.strip() for part in str(value).split(",") if part.strip()]
        unknown = [name for name in names if name not in BASELINES]
        if unknown or POPULARITY not in names:
            self.fail(
                f"expected {POPULARITY} (always scored: the reference of every lift), optionally "
                f"with {GF_CF}, got {value!r}",
                param,
                ctx,
            )
        return tuple(dict.fromkeys(names))


_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0}


class _Duration(click.ParamType):
    """A duration such as ``90s``, ``25m``, ``2h`` or ``1h30m`` (a bare number is seconds);
    converted to seconds."""

    name = "DURATION"
    _PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            parts = self._PART.findall(text)
            if re.fullmatch(r"\d+(?:\.\d+)?", text):
                seconds = float(text)
            elif parts and "".join(n + u for n, u in parts) == text:
                seconds = sum(float(n) * _SECONDS_PER[u] for n, u in parts)
            else:
                self.fail(f"expected a duration such as 90s, 25m or 2h, got {value!r}", param, ctx)
        if not seconds > 0:
            self.fail(f"the duration must be positive, got {value!r}", param, ctx)
        return seconds


class _Size(click.ParamType):
    """A memory size such as ``8G`` or ``512M``; converted to bytes."""

    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


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
@click.option(
    "--epochs",
    default=_TRAIN.max_epochs,
    show_default=True,
    help="Training epochs (with --max-train-time and no --epochs: as many as fit).",
)
@click.option(
    "--max-train-time",
    type=_Duration(),
    help="Time budget for training (e.g. 90s, 25m, 2h): the learning-rate schedule is sized to "
    "finish within it.  [default: none]",
)
@click.option("--dim", default=_TRAIN.dim, show_default=True, help="Embedding size.")
@click.option("--layers", default=_TRAIN.n_layers, show_default=True, help="Propagation layers.")
@click.option(
    "--steps-per-epoch",
    default=_TRAIN.steps_per_epoch,
    show_default=True,
    help="Steps an epoch; the batch is the training interactions divided among them.",
)
@click.option(
    "--batch-size",
    type=int,
    help="BPR triples per step instead of --steps-per-epoch (an epoch's cost then grows with "
    "the square of the data).",
)
@click.option(
    "--learning-rate",
    default=_TRAIN.learning_rate,
    help="Adam's initial rate (half-cosine decay to 0 over the training steps).  [default: "
    f"{_TRAIN.learning_rate:g}; {WARM_START_LEARNING_RATE:g} with --warm-start]",
)
@click.option(
    "--l2",
    default=_TRAIN.l2,
    show_default=True,
    help="L2 weight on the batch's layer-0 embeddings.",
)
@click.option(
    "--spectral-start/--no-spectral-start",
    default=_TRAIN.spectral_start,
    show_default=True,
    help="Start the embeddings from the top singular vectors of the training graph (its SVD "
    "counted in --max-train-time) instead of noise; a --warm-start takes precedence.",
)
@click.option(
    "--baselines",
    type=_Baselines(),
    default=",".join(_RUN.baselines),
    show_default=True,
    help=f"Baselines scored beside the model: {POPULARITY} (always) and {GF_CF}, a "
    "training-free spectral filter (Shen et al., CIKM 2021).",
)
@click.option(
    "--spectral-rank",
    type=click.IntRange(min=1),
    help=f"Rank of {GF_CF}'s ideal low-pass filter.  [default: 256, less where the data is "
    "too small for it]",
)
@click.option(
    "--spectral-alpha",
    type=click.FloatRange(min=0),
    default=_RUN.spectral_alpha,
    show_default=True,
    help=f"Weight of {GF_CF}'s ideal low-pass filter beside its linear one (0: linear only).",
)
@click.option(
    "--top-k", default=_RUN.top_k, show_default=True, help="Recommendations written per user."
)
@click.option(
    "--similar-k",
    default=_RUN.similar_k,
    show_default=True,
    help="Similar items written per item (cosine of the final embeddings).",
)
@click.option(
    "--eval-k",
    type=_Cutoffs(),
    default=",".join(map(str, _RUN.eval_ks)),
    show_default=True,
    help="Evaluation cut-offs.",
)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default=_RUN.split,
    show_default=True,
    help="stratified: per-user random test share; temporal: a global time cut; leave-last: "
    "each user's latest rating.",
)
@click.option(
    "--test-ratio",
    default=_RUN.test_ratio,
    show_default=True,
    help="Test share (stratified, temporal).",
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
    "--seed",
    default=_TRAIN.seed,
    show_default=True,
    help="Seed for split, initialisation and sampling.",
)
@click.option("--replace", is_flag=True, help="Replace an already published version atomically.")
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    help="After publishing, prune as `recsys-job prune --keep N` does (never this version or an "
    "aliased one); a failed prune leaves the version published and exits 0 with a warning.",
)
@click.option(
    "--memory-limit",
    type=_Size(),
    help="Refuse to train when the run's memory estimate exceeds this (e.g. 8G).  "
    "[default: the memory available]",
)
@click.option(
    "--refit",
    is_flag=True,
    help="After evaluating, train again on every interaction (same settings) and publish that "
    "model's embeddings and lists; the evaluation stays the held-out model's.",
)
@click.option(
    "--warm-start",
    metavar="VERSION_OR_ALIAS",
    help="Start from this version's layer-0 embeddings (users and items it knows); refused "
    "when it may have trained on this run's test interactions.",
)
@click.option(
    "--compare-with",
    metavar="ALIAS",
    help="Score this alias's (or version's) embeddings on the same test set (model "
    "'champion'), where fair.  [default: the --promote alias, else production, if set]",
)
@click.option("--promote", metavar="ALIAS", help="Move ALIAS to the new version if --if-better.")
@click.option(
    "--if-better",
    metavar="METRIC@K[:TOLERANCE]",
    help="Promote only when METRIC@K beats the champion's, less TOLERANCE (e.g. ndcg@10).",
)
@click.option(
    "--ray",
    metavar="ADDRESS",
    envvar="RECSYS_RAY_ADDRESS",
    help="Score and write the recommendations in shards on this Ray cluster (auto, host:6379, "
    "ray://host:10001; local: start one on this machine's cores). Needs "
    "pip install 'recsys[ray]'.  [default: $RECSYS_RAY_ADDRESS, else none: this process scores]",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(min=1),
    help="Ray workers scoring shards.  [default: as many as the cluster's CPUs hold]",
)
@click.option(
    "--ray-worker-cpus",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs each Ray worker reserves (and scores with).",
)
@click.option(
    "--ray-worker-gpus",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs each Ray worker reserves (0.5: two share one); 0 scores on CPUs.",
)
@json_option
@pass_job
def run(
    job: JobContext,
    model_version: str,
    replace: bool,
    memory_limit: int | None,
    compare_with: str | None,
    promote: str | None,
    if_better: str | None,
    as_json: bool,
    keep: int | None,
    ray: str | None,
    ray_workers: int | None,
    ray_worker_cpus: int,
    ray_worker_gpus: float,
    **options: object,
) -> None:
    """Train LightGCN, evaluate it against popularity, and publish MODEL_VERSION.

    Exit status 8: published, but the --if-better gate did not promote it.
    """
    ctx = click.get_current_context()
    config = _with_dependent_defaults(ctx, _run_config(options))
    _refuse_ignored_options(ctx, config)
    judging = _judging(compare_with, promote, if_better)
    scale_out = _scale_out(ctx, job, ray, ray_workers, ray_worker_cpus, ray_worker_gpus)
    engine = job.engine()
    with _ray_joined(ray):
        result = run_version(
            engine,
            model_version,
            config,
            replace=replace,
            memory_limit=memory_limit,
            judging=judging,
            as_json=as_json,
            scale_out=scale_out,
        )
    if keep is not None:
        prune_after_publish(job, model_version, keep)
    if result.promotion is not None and not result.promotion.promoted:
        click.get_current_context().exit(PUBLISHED_NOT_PROMOTED)


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


def _scale_out(
    ctx: click.Context,
    job: JobContext,
    address: str | None,
    workers: int | None,
    cpus: int,
    gpus: float,
) -> "RayScoring | None":
    """The Ray settings of ``--ray``, refused (exit 2, before anything else) when the ray
    package is missing, when a --ray-* option is given without --ray, or when --database-url
    holds a password: Ray records the driver's command line as its job's entrypoint, which its
    dashboard and state API show to whoever reaches the cluster."""
    if address is not None and job.database_url and has_password(parse_url(job.database_url)):
        raise InvalidInput(
            "--ray with a password in --database-url: Ray records this command line on the "
            "cluster (the job's entrypoint, on its dashboard). Give the URL in "
            "RECSYS_DATABASE_URL, or the password in ~/.pgpass or PGPASSWORD, instead"
        )
    if address is None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("ray_workers", "ray_worker_cpus", "ray_worker_gpus")
            if ctx.get_parameter_source(name) in _GIVEN
        ]
        if given:
            raise InvalidInput(f"invalid run options: {', '.join(given)} need --ray ADDRESS")
        return None
    from recsys.scale_out.ray_cluster import import_ray

    import_ray()
    from recsys.scale_out.sharded_scoring import RayScoring

    return RayScoring(
        workers=workers,
        worker_cpus=cpus,
        worker_gpus=gpus,
        on_shard=count_bar("recommendation shards", "shards"),
    )


@contextmanager
def _ray_joined(address: str | None) -> Iterator[None]:
    """Ray joined (or started) for the run when ``--ray`` is given, saying which (on stderr,
    as the database is)."""
    if address is None:
        yield
        return
    from recsys.scale_out.ray_cluster import joined

    with joined(address) as cluster:
        click.echo(f"ray: {cluster}", err=True)
        yield


def run_version(
    engine: sa.Engine,
    version: str,
    config: RunConfig,
    *,
    replace: bool,
    memory_limit: int | None = None,
    judging: Judging = Judging(),  # noqa: B008 - frozen, safe to share
    as_json: bool = False,
    scale_out: "RayScoring | None" = None,
) -> "RunResult":
    """Run the pipeline for ``version``, printing its progress and summary (with ``as_json``,
    progress goes to stderr and the summary to stdout as JSON)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    # Imported here, not at the top: TensorFlow takes seconds to load and only `run` needs it.
    from recsys.pipeline import run as run_pipeline

    def report(line: str) -> None:
        click.echo(line, err=as_json)

    report(f"run {version}: {_describe(config)}")
    result = run_pipeline(
        engine,
        version,
        config,
        replace=replace,
        report=report,
        on_step=epoch_bars(),
        memory_limit=memory_limit,
        judging=judging,
        scale_out=scale_out,
    )
    if as_json:
        emit_json(_summary_record(result))
    else:
        click.echo(_summary(result))
    return result


#: Where an option's value came from when the user set it (not click's default).
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)


def _with_dependent_defaults(ctx: click.Context, config: RunConfig) -> RunConfig:
    """Training defaults that depend on another option, where the user set neither themselves:
    a time budget decides how many epochs fit; a warm start trains at its own rate."""
    changes: dict[str, object] = {}
    if config.train.max_train_seconds and ctx.get_parameter_source("epochs") not in _GIVEN:
        changes["max_epochs"] = None
    if config.warm_start and ctx.get_parameter_source("learning_rate") not in _GIVEN:
        changes["learning_rate"] = WARM_START_LEARNING_RATE
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def _refuse_ignored_options(ctx: click.Context, config: RunConfig) -> None:
    """Refuse an option (given on the command line, in the environment or in --config) that the
    run would ignore, rather than run as if it had mattered."""
    given = {
        name for name in _TRAIN_FIELDS | _RUN_FIELDS if ctx.get_parameter_source(name) in _GIVEN
    }
    if {"batch_size", "steps_per_epoch"} <= given:
        raise InvalidInput("invalid run options: give --batch-size or --steps-per-epoch, not both")
    if {"test_ratio", "cutoff"} <= given and config.split == "temporal":
        raise InvalidInput("invalid run options: give --cutoff or --test-ratio, not both")
    ignored = [
        f"--{name.replace('_', '-')}"
        for name, used in (("test_ratio", config.uses_test_ratio), ("cutoff", config.uses_cutoff))
        if name in given and not used
    ]
    spectral = [name for name in ("spectral_rank", "spectral_alpha") if name in given]
    if spectral and not config.gf_cf:
        names = " and ".join(f"--{name.replace('_', '-')}" for name in spectral)
        raise InvalidInput(
            f"invalid run options: {names} set {GF_CF}, which --baselines leaves out"
        )
    if ignored:
        names, verb = " and ".join(ignored), "does" if len(ignored) == 1 else "do"
        raise InvalidInput(
            f"invalid run options: {names} {verb} not apply to --split {config.split}"
        )


def _run_config(options: dict[str, object]) -> RunConfig:
    train = {field: options[name] for name, field in _TRAIN_FIELDS.items()}
    run = {field: options[name] for name, field in _RUN_FIELDS.items()}
    return RunConfig(train=TrainConfig(**train), **run)


def _describe(config: RunConfig) -> str:
    t = config.train
    batching = f"batch {t.batch_size}" if t.batch_size else f"{t.steps_per_epoch} steps/epoch"
    budget = f", budget {t.max_train_seconds:g} s" if t.max_train_seconds else ""
    epochs = f"≤{t.max_epochs} epochs" if t.max_epochs else "as many epochs as fit"
    start = "spectral start" if t.spectral_start else "cold start"
    return (
        f"{config.split} split, dim {t.dim}, {t.n_layers} layers, {batching}, "
        f"lr {t.learning_rate:g}, l2 {t.l2:g}, {epochs}{budget}, seed {t.seed}, {start}, "
        f"baselines {','.join(config.baselines)}"
    )


def _summary(result: "RunResult") -> str:
    evaluation = result.evaluation
    table = evaluation.pivot_table(index=["metric", "k"], columns="model", values="value")
    lines = [f"published {result.version}: best epoch {result.best_epoch}"]
    champion = result.data_stats.get("champion")
    if champion and "skipped" not in champion:
        lines.append(f"champion: {champion['version']} ({champion['compared_as']})")
    lines.append(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if result.data_stats.get("refit"):
        lines.append(
            f"published embeddings and lists: refit on {result.data_stats['refit_interactions']:,} "
            "interactions (the figures above are the held-out model's)"
        )
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phase_seconds.items())
    lines.append(f"seconds: {phases}; total {sum(result.phase_seconds.values()):.1f} s")
    decision = result.promotion
    if decision is not None:
        outcome = "promoted to" if decision.promoted else "not promoted to"
        lines.append(f"{outcome} {decision.alias}: {decision.reason}")
    return "\n".join(lines)


def _summary_record(result: "RunResult") -> dict[str, object]:
    """``run --json``: what the run published, its figures and what the gate did."""
    return {
        "version": result.version,
        "best_epoch": result.best_epoch,
        "evaluation": result.evaluation.to_dict(orient="records"),
        "data_stats": result.data_stats,
        "phase_seconds": result.phase_seconds,
        "promotion": result.promotion.record() if result.promotion else None,
    }
