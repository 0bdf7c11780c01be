"""What a version publishes, and the publishing: its model's rows and lists, its history and
evaluation, written into the run's own tables and attached, with the registry flip and the gate's
alias move, in one transaction (recsys/versions/publish.py).

The published model learnt ``learnt_from`` (the held-out run's training split, or every
interaction for a refit). Its embeddings and layer-0 rows (the trainable state a later run
warm-starts from) are written for the users it learnt and for its candidate items; every user's
list is made from them (recsys/scoring/recommender.py), the users it did not learn getting
the popularity ranking, and nothing a user rated is recommended to them. The lists are scored
and written by this process inside the publishing transaction; or, with Ray workers,
beforehand, a shard each committed into a table that transaction adopts (and that a failure
drops).

Public API:
    publish_run(run, published, evaluation, history, best_epoch, decision) -> RunResult
    PublishedModel.of(snapshot, learnt_from, model, embeddings=None)
        .users() / .items() -> (external ids, final embeddings, layer-0 rows)
        .lineage() -> what it learnt from (recsys/data/lineage.py)
        .recommender(k) -> Recommender
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa

from recsys import memory, run_summary
from recsys.data import lineage
from recsys.data.graph import interaction_matrix
from recsys.data.holdout import Holdout
from recsys.data.snapshot import Snapshot
from recsys.evaluation.baseline import popularity_scores
from recsys.evaluation.evaluate import EvaluationRow
from recsys.model.train import EpochStats
from recsys.provenance import code_version
from recsys.run_context import RunContext
from recsys.run_summary import RunResult
from recsys.scoring import outputs
from recsys.scoring.recommender import Recommender, ShortLists
from recsys.storage import schema
from recsys.versions import aliases, promotion, registry
from recsys.versions.promotion import Decision
from recsys.versions.publish import RunTables, publish

if TYPE_CHECKING:
    from recsys.model.lightgcn import LightGCN

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class PublishedModel:
    """A model as its version publishes it; ``item_emb`` and ``item_layer0`` are the candidates'
    rows, ``user_emb`` and ``user_layer0`` every user's."""

    snapshot: Snapshot
    learnt_from: Holdout
    user_emb: np.ndarray
    item_emb: np.ndarray
    user_layer0: np.ndarray
    item_layer0: np.ndarray

    @classmethod
    def of(
        cls,
        snapshot: Snapshot,
        learnt_from: Holdout,
        model: "LightGCN",
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> "PublishedModel":
        """``model``, which learnt ``learnt_from``; ``embeddings`` are its final embeddings
        where already computed."""
        user_emb, item_emb = embeddings if embeddings is not None else model.embeddings()
        candidates = learnt_from.candidates
        user_layer0, item_layer0 = model.users.numpy(), model.items.numpy()
        return cls(
            snapshot,
            learnt_from,
            user_emb,
            item_emb[candidates],
            user_layer0,
            item_layer0[candidates],
        )

    @cached_property
    def item_ids(self) -> np.ndarray:
        """The candidates' external ids."""
        return self.snapshot.item_ids[self.learnt_from.candidates]

    def users(self) -> Rows:
        """The learnt users' ids, final embeddings and layer-0 rows."""
        learnt = self.learnt_from.trained.nonzero()[0]
        return self.snapshot.user_ids[learnt], self.user_emb[learnt], self.user_layer0[learnt]

    def items(self) -> Rows:
        """The candidate items' ids, final embeddings and layer-0 rows."""
        return self.item_ids, self.item_emb, self.item_layer0

    def lineage(self) -> dict[str, Any]:
        """What the model learnt from, as a later run judges whether it may use it."""
        return lineage.learnt_from(self.snapshot.timestamp[self.learnt_from.train])

    def recommender(self, k: int) -> Recommender:
        """Every user's lists from this model."""
        snapshot, learnt_from = self.snapshot, self.learnt_from
        train_items = snapshot.item[learnt_from.train]
        return Recommender(
            user_ids=snapshot.user_ids,
            item_ids=self.item_ids,
            user_emb=self.user_emb,
            item_emb=self.item_emb,
            popularity=popularity_scores(train_items, snapshot.n_items)[learnt_from.candidates],
            trained=learnt_from.trained,
            exclude=_rated_candidates(snapshot, learnt_from),
            k=k,
        )


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


def publish_run(
    run: RunContext,
    published: PublishedModel,
    evaluation: Sequence[EvaluationRow],
    history: list[EpochStats],
    best_epoch: int,
    decision: Decision | None,
) -> RunResult:
    """Write every output of the run into its tables and publish them, with the registry flip
    and the gate's alias move, in one transaction; the run's result."""
    recommender = published.recommender(run.config.top_k)
    outcome = _Outcome()
    written = partial(_write, run, published, recommender, evaluation, history, outcome)
    pins = decision is not None and decision.promoted and decision.alias == aliases.DEFAULT_ALIAS
    with _recommendations(run, recommender) as write_lists:
        promote = partial(_promote, run.claim.version, decision, run.earlier.holder, outcome)
        views = aliases.PRODUCTION_VIEWS if pins else ()
        publish(run.engine, run.claim, partial(written, write_lists), promote, views)
    # The attach and the registry flip, timed from the end of the writes to the commit.
    seconds = run.timer.seconds
    seconds["publish"] = round(time.perf_counter() - outcome.written_at, 3)
    registry.record_phase(run.engine, run.claim.version, "publish", seconds["publish"])
    return RunResult(
        run.claim.version,
        outcome.evaluation,
        history,
        best_epoch,
        run.stats,
        seconds,
        outcome.decision,
    )


@dataclass
class _Outcome:
    """What the publishing transaction did: the evaluation as stored, when the writes ended (the
    publish is timed from there), and what the gate carried out."""

    evaluation: Any = None
    written_at: float = 0.0
    decision: Decision | None = None


def _write(
    run: RunContext,
    published: PublishedModel,
    recommender: Recommender,
    evaluation: Sequence[EvaluationRow],
    history: list[EpochStats],
    outcome: _Outcome,
    write_lists: Callable[[RunTables], ShortLists],
    tables: RunTables,
) -> dict[str, Any]:
    config, timer = run.config, run.timer
    with timer("write"):
        outputs.write_history(tables, history, config.train.eval_k)
        outcome.evaluation = outputs.write_evaluation(tables, evaluation)
        outputs.write_embeddings(tables, schema.user_embeddings, *published.users())
        outputs.write_embeddings(tables, schema.item_embeddings, *published.items())
    with timer("similar"):
        outputs.write_similar_items(
            tables, recommender.item_ids, recommender.item_emb, config.similar_k
        )
    short = write_lists(tables)
    run.stats.update(run_summary.short_lists(short, config.top_k, run.report))
    run.stats["peak_memory_mib"] = memory.peak_rss_bytes() >> 20
    outcome.written_at = time.perf_counter()
    return {
        "params": config.params(),
        "data_stats": run.stats,
        "phase_seconds": timer.seconds,
        "code_version": code_version(),
    }


def _promote(
    version: str,
    decision: Decision | None,
    holder: str | None,
    outcome: _Outcome,
    conn: sa.Connection,
) -> None:
    if decision is not None:
        outcome.decision = promotion.carry_out(conn, version, decision, holder)


@contextmanager
def _recommendations(
    run: RunContext, recommender: Recommender
) -> Iterator[Callable[[RunTables], ShortLists]]:
    """How the lists reach the publish: written inside its transaction by this process, or
    beforehand by the run's Ray workers into a table it adopts."""
    if run.workers is None:

        def write_here(tables: RunTables) -> ShortLists:
            with run.timer("score"):
                return outputs.write_recommendations(tables, recommender)

        yield write_here
        return
    with ExitStack() as stack:
        with run.timer("score"):
            written = run.workers.written(run.engine, run.claim, recommender, run.report)
            sharded = stack.enter_context(written)
        run.stats.update(sharded.stats)
        yield sharded.adopt
