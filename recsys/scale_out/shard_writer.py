"""A Ray worker's side of ``run --ray``: shards of users scored and written, each exactly once.

A :class:`ShardWriter` lives in a Ray actor (see :mod:`recsys.scale_out.sharded_scoring`; this
module does not import Ray). It is started when the run begins, long before there is anything
to score: it then pays for TensorFlow's import and opens its database connection while the
driver trains. Each shard comes with its :class:`ShardTarget` (the run's table and the item side
of its recommender) and is written in one transaction: the shard's ledger row first
(:func:`recsys.versions.shard_ledger.take`: a shard committed by an earlier attempt is reported,
not written again), then its rows by binary COPY into the run's recommendations table, then
the counts. The lists are :meth:`recsys.scoring.recommender.Recommender.chunks`' own, so they
are the ones the local path writes.

Fault points: ``rows:recommendations`` after each chunk of rows goes out, ``shard:complete``
once the ledger row and every row are written (both before the commit), ``shard:committed``
after the commit, before the result is reported.
"""

from dataclasses import dataclass

from psycopg import sql

from recsys.faults import checkpoint
from recsys.model.lightgcn import configure_threads
from recsys.scoring.recommender import Recommender, UserRows, copy_recommendations
from recsys.storage.database import EngineSpec
from recsys.versions import shard_ledger

#: How a worker's sessions show in ``pg_stat_activity``.
APPLICATION_NAME = "recsys-shard"


@dataclass(frozen=True)
class ShardTarget:
    """Where one run's shards go and what scores them: known only once the model is trained,
    so it reaches the workers after they started."""

    #: The item side of the run's recommender, with no users.
    catalogue: Recommender
    run_id: int
    table: sql.Identifier


@dataclass(frozen=True)
class ShardResult:
    entry: shard_ledger.Entry
    #: False when an earlier attempt had committed the shard and this one wrote nothing.
    written: bool


class ShardWriter:
    """Writes shards of a run's recommendations, each in its own transaction."""

    def __init__(self, database: EngineSpec, threads: int) -> None:
        configure_threads(threads)  # the CPUs Ray reserved for this worker, not the node's
        self.engine = database.connect(APPLICATION_NAME)

    def write(self, target: ShardTarget, shard: int, users: UserRows) -> ShardResult:
        """Score ``users`` and write their lists as shard ``shard``, unless it was written."""
        user_count = len(users.user_ids)
        with self.engine.begin() as conn:
            earlier = shard_ledger.take(conn, target.run_id, shard, user_count)
            if earlier is not None:
                return ShardResult(earlier, written=False)
            recommender = target.catalogue.with_users(users)
            rows, short = copy_recommendations(conn, target.table, recommender)
            entry = shard_ledger.Entry(shard, user_count, rows, short.without, short.fewer_than_k)
            shard_ledger.complete(conn, target.run_id, entry)
            checkpoint("shard:complete")
        checkpoint("shard:committed")
        return ShardResult(entry, written=True)
