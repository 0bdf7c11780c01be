"""One training run, end to end: snapshot → split → train → evaluate → write and publish.

Order matters for safety: options and data are checked before anything is written, memory
included; the version is locked first (so a second run of the same name stops at once) and
recorded as running only once the data has been read, split and checked; a failure after that
marks the version failed (or, for a replacement, leaves the published one untouched) and
publishes nothing. Every output is streamed into the run's own tables and attached, with the
registry flip, in one transaction (recsys/versions/publish.py); with ``scale_out``, the
recommendations are first written in shards by Ray workers (recsys/scale_out/), into a table that
transaction adopts: the workers start as the run begins (once the version is locked), while
this process reads the data and trains. What the run says and records of itself is
recsys/run_summary.py's; the last stage, writing and publishing, recsys/run_outputs.py's.
"""

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from recsys import memory, run_summary
from recsys.data.holdout import Holdout, check_data, check_holdout, data_stats, holdout, whole
from recsys.data.snapshot import Snapshot, read_snapshot
from recsys.evaluation.evaluate import evaluate_holdout, evaluate_spectral
from recsys.faults import checkpoint
from recsys.model.lightgcn import configure_threads, device_description
from recsys.model.settings import TrainConfig
from recsys.model.train import EpochStats, StepProgress, TrainResult, fit
from recsys.run_config import RunConfig
from recsys.run_context import RunContext
from recsys.run_outputs import PublishedModel, publish_run
from recsys.run_summary import PhaseTimer, Report, RunResult
from recsys.versions import earlier_versions, promotion, registry
from recsys.versions.promotion import Judging

if TYPE_CHECKING:
    from recsys.scale_out.sharded_scoring import RayScoring

__all__ = ["Report", "RunResult", "run"]


def run(
    engine: sa.Engine,
    version: str,
    config: RunConfig,
    *,
    replace: bool = False,
    report: Report = print,
    on_step: StepProgress | None = None,
    memory_limit: int | None = None,
    judging: Judging = Judging(),  # noqa: B008 - frozen, safe to share
    scale_out: "RayScoring | None" = None,
) -> RunResult:
    """Train, evaluate, score and publish ``version``; raises on failure (after recording it).

    ``report`` receives the run's lines (data, epochs, notes); ``on_step(done, total)`` each
    training step within its epoch, for a progress bar. ``memory_limit`` (bytes) replaces the
    memory available as what the run's estimate must fit in. ``judging`` names the champion
    scored beside the model and the gate that may promote the new version. ``scale_out`` scores
    and writes the recommendations on the Ray cluster this process has joined, with workers
    started as the run begins.
    """
    config.check()
    if judging.gate is not None:
        judging.gate.check(config.eval_ks)
    registry.validate_name(version)
    claim = registry.acquire(engine, version, replace=replace)
    try:
        started = scale_out.started(engine, report) if scale_out is not None else nullcontext()
        with started as workers:
            timer = PhaseTimer()
            with timer("read"):
                snapshot = read_snapshot(engine, config.min_rating)
            check_data(snapshot, config)
            with timer("split"):
                parts = holdout(snapshot, config)
            check_holdout(parts, config)
            estimate = memory.estimate_run_bytes(snapshot, parts, config)
            memory.check_fits(estimate, memory_limit)
            earlier = earlier_versions.read(engine, snapshot, parts, config, judging, report)
            registry.start(engine, claim, config.params())
            context = RunContext(
                engine, claim, config, judging, earlier, report, on_step, workers, timer
            )
            try:
                checkpoint("started")
                stats = data_stats(snapshot, parts) | {"memory_estimate_mib": estimate >> 20}
                context.stats = stats | earlier.stats()
                return _train_and_publish(context, snapshot, parts)
            except BaseException as exc:
                registry.mark_failed(engine, claim, _failure(exc))
                raise
    finally:
        claim.release()


def _train_and_publish(run: RunContext, snapshot: Snapshot, parts: Holdout) -> RunResult:
    config, stats, timer, report = run.config, run.stats, run.timer, run.report
    for line in run_summary.data_lines(stats, config.split):
        report(line)
    configure_threads()
    device = device_description()
    report(f"device: {device}")
    with timer("train"):
        trained = _fit(run, snapshot, parts.train, config.train, refit=False)
    stats.update(run_summary.training_stats(trained, config, device))
    for line in run_summary.choice_lines(trained, config.train.eval_k):
        report(line)
    report(run_summary.trained_line(trained))
    champion = run.earlier.champion
    with timer("evaluate"):
        embeddings = trained.model.embeddings()
        rival = champion.embeddings if champion is not None else None
        evaluation = evaluate_holdout(*embeddings, snapshot, parts, config.eval_ks, rival)
    if config.gf_cf:
        with timer("gf-cf"):
            rows, stats["gf_cf"] = evaluate_spectral(
                snapshot, parts, config.eval_ks, config.spectral_rank, config.spectral_alpha
            )
        evaluation += rows
    stats["beaten_by"] = run_summary.beaten_by(evaluation, report)
    decision = None
    if run.judging.gate is not None:
        version, skipped = (champion.version, champion.skipped) if champion else (None, None)
        decision = promotion.decide(run.judging.gate, evaluation, version, skipped)
    history, best_epoch, chosen = trained.history, trained.best_epoch, trained.chosen
    if config.refit:
        # The held-out model is evaluated: free it before the refit, and publish the refit's.
        del trained, embeddings
        with timer("refit"):
            train = config.train.for_refit(best_epoch, chosen)
            refit = _fit(run, snapshot, slice(None), train, refit=True)
            stats.update(run_summary.refit_stats(refit, len(snapshot.user)))
            report(run_summary.refit_line(refit, len(snapshot.user)))
        published = PublishedModel.of(snapshot, whole(snapshot), refit.model)
        del refit
    else:
        published = PublishedModel.of(snapshot, parts, trained.model, embeddings)
        del trained, embeddings
    stats.update(published.lineage())
    return publish_run(run, published, evaluation, history, best_epoch, decision)


def _fit(
    run: RunContext, snapshot: Snapshot, rows: Any, train: TrainConfig, refit: bool
) -> TrainResult:
    """A model trained on ``rows`` of the snapshot (from a warm start's rows where the run has
    one), each epoch reported."""

    def on_epoch(epoch: EpochStats) -> None:
        checkpoint("training")
        run.report(run_summary.epoch_line(epoch, train.eval_k, refit))

    warm = run.earlier.warm
    return fit(
        snapshot.user[rows],
        snapshot.item[rows],
        snapshot.n_users,
        snapshot.n_items,
        train,
        on_epoch,
        run.on_step,
        initial=warm.state if warm is not None else None,
        on_trial=lambda trial: run.report(run_summary.trial_line(trial, train.eval_k)),
    )


def _failure(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"
