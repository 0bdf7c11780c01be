"""One training run, end to end: snapshot → split → train → evaluate → write and publish.

Order matters for safety: options and data are checked before anything is written, memory
included; the version is locked first (so a second run of the same name stops at once) and
recorded as running only once the data has been read, split and checked; a failure after that
marks the version failed (or, for a replacement, leaves the published one untouched) and
publishes nothing. Every output is streamed into the run's own tables and attached, with the
registry flip, in one transaction (recsys/storage/publish.py); with ``scale_out``, the
recommendations are first written in shards by Ray workers (recsys/scale_out/), into a table that
transaction adopts: the workers start as the run begins (once the version is locked), while
this process reads the data and trains.
"""

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sqlalchemy as sa

from recsys import memory
from recsys.data import lineage
from recsys.data.graph import interaction_matrix
from recsys.data.holdout import Holdout, check_data, check_holdout, data_stats, holdout, whole
from recsys.data.snapshot import Snapshot, read_snapshot
from recsys.evaluation.baseline import popularity_scores
from recsys.evaluation.evaluate import (
    BASELINE_ROWS,
    EvaluationRow,
    evaluate_holdout,
    evaluate_spectral,
)
from recsys.evaluation.spectral import filter_rank
from recsys.faults import checkpoint
from recsys.model.lightgcn import LightGCN, compute_device, configure_threads
from recsys.model.native_kernel import csr_kernel
from recsys.model.train import EpochStats, StepProgress, TrainResult, fit
from recsys.model.warm_start import InitialState
from recsys.provenance import code_version
from recsys.run_config import RunConfig
from recsys.scoring import outputs
from recsys.storage import schema
from recsys.versions import aliases, earlier_versions, promotion, registry
from recsys.versions.earlier_versions import Earlier
from recsys.versions.listing import HEADLINE_METRICS
from recsys.versions.promotion import Decision, Judging
from recsys.versions.publish import RunTables, publish

if TYPE_CHECKING:
    from recsys.scale_out.sharded_scoring import RayScoring, WorkerPool


@dataclass
class RunResult:
    version: str
    evaluation: pd.DataFrame
    history: list[EpochStats]
    best_epoch: int
    data_stats: dict[str, Any]
    phase_seconds: dict[str, float]
    #: What the promotion gate decided and did (None without ``--promote``).
    promotion: Decision | None = None


Report = Callable[[str], None]


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
        with _workers_started(engine, scale_out, report) as workers:
            timer = _PhaseTimer()
            with timer("read"):
                snapshot = read_snapshot(engine, config.min_rating)
            check_data(snapshot, config)
            with timer("split"):
                parts = holdout(snapshot, config)
            check_holdout(parts, config)
            estimate = memory.estimate_bytes(
                snapshot.n_users,
                snapshot.n_items,
                len(snapshot.user) if config.refit else len(parts.train),
                len(snapshot.rated_user),
                config.train.dim,
                warm_start=config.warm_start is not None,
                spectral_rank=_gf_cf_rank(config, parts),
            )
            memory.check_fits(estimate, memory_limit)
            earlier = earlier_versions.read(engine, snapshot, parts, config, judging, report)
            registry.start(engine, claim, config.params())
            try:
                checkpoint("started")
                stats = data_stats(snapshot, parts) | {"memory_estimate_mib": estimate >> 20}
                stats |= earlier.stats()
                result = _train_and_publish(
                    engine,
                    claim,
                    snapshot,
                    parts,
                    config,
                    stats,
                    timer,
                    report,
                    on_step,
                    judging,
                    earlier,
                    workers,
                )
            except BaseException as exc:
                registry.mark_failed(engine, claim, _describe(exc))
                raise
            return result
    finally:
        claim.release()


def _train_and_publish(
    engine: sa.Engine,
    claim: registry.Claim,
    snapshot: Snapshot,
    parts: Holdout,
    config: RunConfig,
    stats: dict[str, Any],
    timer: "_PhaseTimer",
    report: Report,
    on_step: StepProgress | None,
    judging: Judging,
    earlier: Earlier,
    workers: "WorkerPool | None",
) -> RunResult:
    _report_data(stats, config, report)
    initial = earlier.warm.state if earlier.warm is not None else None
    trained = _train(snapshot, parts, config, stats, timer, report, on_step, initial)
    champion = earlier.champion
    with timer("evaluate"):
        user_emb, item_emb = trained.model.embeddings()
        rival = champion.embeddings if champion is not None else None
        evaluation = evaluate_holdout(user_emb, item_emb, snapshot, parts, config.eval_ks, rival)
    if config.gf_cf:
        with timer("gf-cf"):
            rows, stats["gf_cf"] = evaluate_spectral(
                snapshot, parts, config.eval_ks, config.spectral_rank, config.spectral_alpha
            )
        evaluation += rows
    stats["beaten_by"] = _beaten_by(evaluation, report)
    decision = None
    if judging.gate is not None:
        version, skipped = (champion.version, champion.skipped) if champion else (None, None)
        decision = promotion.decide(judging.gate, evaluation, version, skipped)
    history, best_epoch, model = trained.history, trained.best_epoch, trained.model
    learnt_from = parts
    if config.refit:
        # The held-out model is evaluated: free it before the refit, and publish the refit's.
        del trained, model, user_emb, item_emb
        learnt_from = whole(snapshot)
        with timer("refit"):
            model = _refit(snapshot, config, best_epoch, stats, report, on_step, initial)
        user_emb, item_emb = model.embeddings()
    stats.update(lineage.learnt_from(snapshot.timestamp[learnt_from.train]))
    layer0 = model.users.numpy(), model.items.numpy()
    del model
    recommender = _recommender(snapshot, learnt_from, user_emb, item_emb, config.top_k)
    written: dict[str, Any] = {}

    def write_outputs(tables: RunTables) -> dict[str, Any]:
        with timer("write"):
            outputs.write_history(tables, history, config.train.eval_k)
            written["evaluation"] = outputs.write_evaluation(tables, evaluation)
            learnt = learnt_from.trained.nonzero()[0]
            outputs.write_embeddings(
                tables,
                schema.user_embeddings,
                snapshot.user_ids[learnt],
                user_emb[learnt],
                layer0[0][learnt],
            )
            outputs.write_embeddings(
                tables,
                schema.item_embeddings,
                recommender.item_ids,
                recommender.item_emb,
                layer0[1][learnt_from.candidates],
            )
        with timer("similar"):
            outputs.write_similar_items(
                tables, recommender.item_ids, recommender.item_emb, config.similar_k
            )
        short = write_lists(tables)
        stats.update(_short_lists(short, config.top_k, report))
        stats["peak_memory_mib"] = memory.peak_rss_bytes() >> 20
        written["at"] = time.perf_counter()
        return {
            "params": config.params(),
            "data_stats": stats,
            "phase_seconds": timer.seconds,
            "code_version": code_version(),
        }

    def promote(conn: sa.Connection) -> None:
        if decision is not None:
            written["decision"] = promotion.carry_out(conn, claim.version, decision, earlier.holder)

    pins = decision is not None and decision.promoted and decision.alias == aliases.DEFAULT_ALIAS
    lists = _recommendations(engine, claim, recommender, workers, timer, stats, report)
    with lists as write_lists:
        publish(engine, claim, write_outputs, promote, aliases.PRODUCTION_VIEWS if pins else ())
    # The attach and the registry flip, timed from the end of the writes to the commit.
    timer.seconds["publish"] = round(time.perf_counter() - written["at"], 3)
    registry.record_phase(engine, claim.version, "publish", timer.seconds["publish"])
    return RunResult(
        claim.version,
        written["evaluation"],
        history,
        best_epoch,
        stats,
        timer.seconds,
        written.get("decision"),
    )


@contextmanager
def _recommendations(
    engine: sa.Engine,
    claim: registry.Claim,
    recommender: outputs.Recommender,
    workers: "WorkerPool | None",
    timer: "_PhaseTimer",
    stats: dict[str, Any],
    report: Report,
) -> Iterator[Callable[[RunTables], outputs.ShortLists]]:
    """How the lists reach the publish: scored and written by this process inside the
    publishing transaction; or, with ``workers``, beforehand, by Ray workers committing a
    shard each into a table that transaction adopts (and that a failure drops)."""
    if workers is None:

        def write_here(tables: RunTables) -> outputs.ShortLists:
            with timer("score"):
                return outputs.write_recommendations(tables, recommender)

        yield write_here
        return
    with ExitStack() as stack:
        with timer("score"):
            sharded = stack.enter_context(workers.written(engine, claim, recommender, report))
        stats.update(sharded.stats)
        yield sharded.adopt


@contextmanager
def _workers_started(
    engine: sa.Engine, scale_out: "RayScoring | None", report: Report
) -> Iterator["WorkerPool | None"]:
    """With ``scale_out``, its Ray workers, started as the run begins so that they have
    started (TensorFlow imported, connected) by the time the model is trained; stopped when the
    run ends, however it ends."""
    if scale_out is None:
        yield None
        return
    with scale_out.started(engine, report) as workers:
        yield workers


def _refit(
    snapshot: Snapshot,
    config: RunConfig,
    best_epoch: int,
    stats: dict[str, Any],
    report: Report,
    on_step: StepProgress | None,
    initial: InitialState | None,
) -> LightGCN:
    """The model to publish, trained on every interaction with the held-out run's settings:
    its epochs (or time budget); with validation, the epochs it chose, without holding any out."""
    train = config.train
    if train.val_ratio > 0:
        train = dataclasses.replace(train, max_epochs=best_epoch, val_ratio=0.0)

    def on_epoch(epoch: EpochStats) -> None:
        checkpoint("training")
        report(f"refit epoch {epoch.epoch:3d}: loss {epoch.loss:.4f} ({epoch.seconds:.1f} s)")

    refit = fit(
        snapshot.user,
        snapshot.item,
        snapshot.n_users,
        snapshot.n_items,
        train,
        on_epoch,
        on_step,
        initial=initial,
    )
    stats.update(
        {
            "refit": True,
            "refit_interactions": len(snapshot.user),
            "refit_epochs": len(refit.history),
            "refit_steps": refit.steps,
            "refit_batch_size": refit.schedule.batch_size,
        }
    )
    report(
        f"refit on all {len(snapshot.user):,} interactions: {len(refit.history)} epochs; the "
        "published embeddings and lists come from it, the evaluation from the held-out model"
    )
    return refit.model


def _recommender(
    snapshot: Snapshot, learnt_from: Holdout, user_emb: np.ndarray, item_emb: np.ndarray, k: int
) -> outputs.Recommender:
    """Every user's lists from the published model, which learnt ``learnt_from.train``."""
    train_items = snapshot.item[learnt_from.train]
    return outputs.Recommender(
        user_ids=snapshot.user_ids,
        item_ids=snapshot.item_ids[learnt_from.candidates],
        user_emb=user_emb,
        item_emb=item_emb[learnt_from.candidates],
        popularity=popularity_scores(train_items, snapshot.n_items)[learnt_from.candidates],
        trained=learnt_from.trained,
        exclude=_rated_candidates(snapshot, learnt_from),
        k=k,
    )


def _report_data(stats: dict[str, Any], config: RunConfig, report: Report) -> None:
    report(
        f"data: {stats['users']:,} users, {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions → {stats['train_interactions']:,} train / "
        f"{stats['test_interactions']:,} test ({config.split}); memory estimate "
        f"{stats['memory_estimate_mib']:,} MiB"
    )
    if stats["test_interactions_evaluated"] < stats["test_interactions"]:
        report(
            f"note: {stats['test_interactions_evaluated']:,} of {stats['test_interactions']:,} "
            "test interactions evaluated; the others' user or item has no training interaction"
        )


def _train(
    snapshot: Snapshot,
    parts: Holdout,
    config: RunConfig,
    stats: dict[str, Any],
    timer: "_PhaseTimer",
    report: Report,
    on_step: StepProgress | None,
    initial: InitialState | None,
) -> TrainResult:
    def on_epoch(epoch: EpochStats) -> None:
        checkpoint("training")
        validation = (
            f", val ndcg@{config.train.eval_k} {epoch.val_ndcg:.4f}"
            if epoch.val_ndcg is not None
            else ""
        )
        report(f"epoch {epoch.epoch:3d}: loss {epoch.loss:.4f}{validation} ({epoch.seconds:.1f} s)")

    configure_threads()
    device = compute_device()
    if device == "CPU":
        device = f"CPU, sparse products on {csr_kernel().description}"
    report(f"device: {device}")
    with timer("train"):
        trained = fit(
            snapshot.user[parts.train],
            snapshot.item[parts.train],
            snapshot.n_users,
            snapshot.n_items,
            config.train,
            on_epoch,
            on_step,
            initial=initial,
        )
    stats.update(_training_stats(trained, config, device))
    budget = "; as many as the time budget allowed" if trained.schedule.budget_limited else ""
    report(
        f"best epoch {trained.best_epoch} of {len(trained.history)} "
        f"({trained.schedule.total_steps:,} steps of {trained.schedule.batch_size:,} "
        f"triples{budget})"
    )
    return trained


def _rated_candidates(snapshot: Snapshot, parts: Holdout) -> sp.csr_matrix:
    """Users × candidate positions: every candidate each user rated (counted as an interaction
    or not), never recommended to them."""
    rated_item = np.searchsorted(snapshot.item_ids, snapshot.rated_item)
    rated_item = np.minimum(rated_item, snapshot.n_items - 1)
    known = snapshot.item_ids[rated_item] == snapshot.rated_item
    rated_position = parts.position[rated_item[known]]
    keep = rated_position >= 0
    return interaction_matrix(
        snapshot.rated_user[known][keep],
        rated_position[keep],
        snapshot.n_users,
        len(parts.candidates),
    )


def _training_stats(trained: TrainResult, config: RunConfig, device: str) -> dict[str, Any]:
    """What training did, beside what it was asked to: the batch its steps-per-epoch setting
    gave on this data, the steps and epochs a time budget allowed, and the rate its last step
    applied (the cosine's end, with or without a budget)."""
    return {
        "training_device": device,
        "training_batch_size": trained.schedule.batch_size,
        "training_steps_per_epoch": trained.schedule.steps_per_epoch,
        "training_steps": trained.steps,
        "training_last_learning_rate": trained.last_rate,
        "training_epochs": len(trained.history),
        "training_budget_seconds": config.train.max_train_seconds,
        "training_budget_limited": trained.schedule.budget_limited,
        "training_start": trained.start,
        "training_start_seconds": round(trained.start_seconds, 3),
    }


def _gf_cf_rank(config: RunConfig, parts: Holdout) -> int:
    """The rank of the GF-CF baseline's low-pass filter (0 when it does not run)."""
    if not config.gf_cf:
        return 0
    return filter_rank(config.spectral_rank, int(parts.trained.sum()), len(parts.candidates))


def _beaten_by(evaluation: list[EvaluationRow], report: Report) -> dict[str, list[str]]:
    """The headline figures (``METRIC@K``) on which a baseline beats the model, per baseline,
    said plainly: a user who learns that the filter wins should not have to find it in a table."""
    model = {(r.metric, r.k): r.value for r in evaluation if r.model == "model"}
    beaten: dict[str, list[str]] = {}
    for row in evaluation:
        headline = row.model in BASELINE_ROWS and row.metric in HEADLINE_METRICS
        if headline and row.value > model[row.metric, row.k]:
            beaten.setdefault(outputs.STORED_NAMES[row.model], []).append(f"{row.metric}@{row.k}")
    for name, figures in beaten.items():
        report(f"note: the {name} baseline beats LightGCN on {', '.join(figures)}")
    return beaten


def _short_lists(short: outputs.ShortLists, k: int, report: Report) -> dict[str, int]:
    counts = {
        "users_without_recommendations": short.without,
        "users_with_fewer_than_k": short.fewer_than_k,
    }
    if any(counts.values()):
        report(
            f"note: users without a recommendation: {short.without:,}, with fewer than {k}: "
            f"{short.fewer_than_k:,} (they have rated every item that can be recommended, or all "
            "but a few)"
        )
    return counts


class _PhaseTimer:
    """Wall seconds per named phase, for the registry and the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(time.perf_counter() - started, 3)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"
