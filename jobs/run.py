"""``recsys-job run``: train, evaluate and publish one model version."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from recsys.entry import execute
from recsys.errors import PUBLISHED_NOT_PROMOTED, InvalidInput
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.run_config import GF_CF, POPULARITY, SPLITS, RunConfig
from recsys.run_settings import (
    AUTO,
    RaySettings,
    parse_baselines,
    parse_bytes,
    parse_cutoff,
    parse_cutoffs,
    parse_duration,
    parse_l2,
    parse_negatives,
    read_settings_file,
    resolve,
)
from recsys.storage.database import has_password, parse_url
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import emit_json, json_option
from recsys_jobs.progress import count_bar, epoch_bars
from recsys_jobs.prune import prune_after_publish

if TYPE_CHECKING:
    from recsys.scale_out.sharded_scoring import RayScoring

_TRAIN = TrainConfig()  # the defaults every option below shows
_RUN = RunConfig()


def _load_config(ctx: click.Context, _param: click.Parameter, path: Path | None) -> Path | None:
    """Use a TOML file's keys (the option names, - or _) as defaults; options still override."""
    if path is None:
        return None
    known = {param.name for param in ctx.command.params if param.expose_value}
    try:
        settings = read_settings_file(path, known)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    ctx.default_map = {**(ctx.default_map or {}), **settings}
    return path


class _Parsed(click.ParamType):
    """An option read by one of recsys.run_settings's parsers."""

    def __init__(self, name: str, parse: Callable[[object], object]) -> None:
        self.name, self._parse = name, parse

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


#: Comma-separated cut-offs such as ``10,20``.
_CUTOFFS = _Parsed("K[,K...]", parse_cutoffs)
#: Comma-separated baseline names such as ``popularity,gf-cf``.
_BASELINES = _Parsed("NAME[,NAME...]", parse_baselines)
#: A duration such as ``90s``, ``25m``, ``2h`` or ``1h30m`` (a bare number is seconds).
_DURATION = _Parsed("DURATION", parse_duration)
#: A memory size such as ``8G`` or ``512M``, in bytes.
_SIZE = _Parsed("SIZE", parse_bytes)
#: An L2 weight, or ``auto``.
_L2 = _Parsed("WEIGHT|auto", parse_l2)
#: Negative candidates per triple, or ``auto``.
_NEGATIVES = _Parsed("N|auto", parse_negatives)
#: An ISO 8601 date or time, in UTC (one without a zone is taken as UTC).
_TIME = _Parsed("ISO-8601", parse_cutoff)


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
    type=_DURATION,
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
    type=_L2,
    default=_TRAIN.l2,
    show_default=True,
    help="L2 weight on the batch's layer-0 embeddings; `auto` chooses it from the data by short "
    "validation trials inside --max-train-time (docs/quality.md).",
)
@click.option(
    "--negatives",
    type=_NEGATIVES,
    default=AUTO if _TRAIN.choose_negatives else _TRAIN.negative_candidates,
    show_default=True,
    help="Uniform negative items drawn per training triple; each step trains against the one "
    "the model scores highest. `auto` chooses 1, 4 or 16 from the data by short validation "
    "trials inside --max-train-time, keeping 1 unless more clearly win (docs/quality.md).",
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
    type=_BASELINES,
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
    type=_CUTOFFS,
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
    type=_TIME,
    help="Temporal split at this time instead of a ratio: an ISO 8601 date or time, e.g. "
    "2020-01-02, 2020-01-02T00:00:00Z or 2020-01-02T02:00:00+02:00 (no zone: UTC).",
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
    type=_SIZE,
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
def run(job: JobContext, as_json: bool, **_options: object) -> None:
    """Train LightGCN, evaluate it against popularity, and publish MODEL_VERSION.

    Exit status 8: published, but the --if-better gate did not promote it.
    """
    ctx = click.get_current_context()
    # The options the user set, named as recsys.run_settings names them: it applies the rules.
    settings = resolve({name: v for name, v in ctx.params.items() if _given(ctx, name)})
    scale_out = _scale_out(job, settings.ray)
    engine = job.engine()
    with _ray_joined(settings.ray):
        result = execute(
            engine,
            settings,
            report=lambda line: click.echo(line, err=as_json),
            on_step=epoch_bars(),
            scale_out=scale_out,
        )
    if as_json:
        emit_json(result.record())
    else:
        click.echo(result.summary())
    if settings.keep is not None:
        prune_after_publish(job, settings.version, settings.keep)
    if result.promotion is not None and not result.promotion.promoted:
        ctx.exit(PUBLISHED_NOT_PROMOTED)


#: Where an option's value came from when the user set it (not click's default).
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in _GIVEN and name != "as_json"


def _scale_out(job: JobContext, ray: RaySettings | None) -> "RayScoring | None":
    """The Ray scoring of ``--ray``, refused (exit 2, before anything else) when the ray
    package is missing or when --database-url holds a password: Ray records the driver's command
    line as its job's entrypoint, which its dashboard and state API show to whoever reaches the
    cluster."""
    if ray is None:
        return None
    if job.database_url and has_password(parse_url(job.database_url)):
        raise InvalidInput(
            "--ray with a password in --database-url: Ray records this command line on the "
            "cluster (the job's entrypoint, on its dashboard). Give the URL in "
            "RECSYS_DATABASE_URL, or the password in ~/.pgpass or PGPASSWORD, instead"
        )
    return ray.scoring(on_shard=count_bar("recommendation shards", "shards"))


@contextmanager
def _ray_joined(ray: RaySettings | None) -> Iterator[None]:
    """Ray joined (or started) for the run when ``--ray`` is given, saying which (on stderr,
    as the database is)."""
    if ray is None:
        yield
        return
    with ray.joined() as cluster:
        click.echo(f"ray: {cluster}", err=True)
        yield
