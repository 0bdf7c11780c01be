"""The driver's side of ``run --ray``: every user's recommendations scored and written in shards
by Ray workers, before the publish adopts them.

The run's recommendations table is created and committed first (unattached, so invisible:
:func:`recsys.storage.publish.prepared`). The item side of the recommender (item ids,
embeddings, popularity) and the database's connection spec go into Ray's object store once;
users go out in shards (:meth:`recsys.outputs.Recommender.shards`: cut where the local path
cuts its scoring chunks, so every score is the local path's to the bit), one at a time to each
free worker, a shard's user-side arrays travelling only to the worker that scores it. Each
worker (:class:`recsys.scale_out.shard_writer.ShardWriter`, a Ray actor) writes a shard's rows
and its ledger row in one transaction of its own. Once every shard has reported, the ledger
must account for every shard and every row of the table (:func:`recsys.storage.shard_ledger.
check`); the publish then adopts the table in its one transaction.

A worker that dies (killed, out of memory, its node gone) is restarted and its shard retried,
as is a shard whose database connection failed, up to ``retries`` times; a retry of a shard
that had committed writes nothing. A shard that fails for good stops the run: the workers are
stopped, the table dropped, nothing published.

The database URL reaches the workers inside the object store only, in an
:class:`~recsys.storage.database.EngineSpec` whose repr masks the password: never as a task or
actor argument of its own, in an actor's name or runtime environment, or in a log line.
"""

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys import faults
from recsys.errors import RecsysError
from recsys.outputs import Recommender, ShortLists
from recsys.scale_out.ray_cluster import import_ray
from recsys.scale_out.shard_writer import ShardResult, ShardWriter
from recsys.storage import registry, schema, shard_ledger
from recsys.storage.database import EngineSpec
from recsys.storage.publish import RunTables, prepared

#: Errors after which a shard is tried again (besides its worker dying): the database connection
#: failed or a lock wait timed out. Anything else is a bug or bad data, the same on every try.
RETRIED = (sa.exc.OperationalError, psycopg.OperationalError)

Report = Callable[[str], None]


@dataclass(frozen=True)
class ShardedLists:
    """The lists the workers committed, waiting for the publish to adopt their table."""

    short: ShortLists
    stats: dict[str, Any]

    def adopt(self, tables: RunTables) -> ShortLists:
        tables.adopt(schema.recommendations)
        return self.short


@dataclass(frozen=True)
class RayScoring:
    """How a run's lists are scored on the Ray cluster this process has joined
    (:func:`recsys.scale_out.ray_cluster.joined`)."""

    #: Workers (Ray actors) scoring shards; None: as many as the cluster's CPUs (and GPUs,
    #: with ``worker_gpus``) hold, never more than there are shards.
    workers: int | None = None
    #: CPUs each worker reserves, and the TensorFlow threads it scores with.
    worker_cpus: int = 1
    #: GPUs each worker reserves (0.5: two share one); 0 scores on CPUs.
    worker_gpus: float = 0.0
    #: About how many users a shard holds (cut at a multiple of the scoring chunk).
    users_per_shard: int = 50_000
    #: Times a worker is restarted, and a shard tried again, before the run fails.
    retries: int = 3
    #: ``on_shard(done, total)``, for a progress bar.
    on_shard: Callable[[int, int], None] | None = field(default=None, compare=False)

    @contextmanager
    def written(
        self,
        engine: sa.Engine,
        claim: registry.Claim,
        recommender: Recommender,
        report: Report,
    ) -> Iterator[ShardedLists]:
        """Every user's list written into the run's recommendations table by the workers and
        checked against the ledger; the block publishes it (or fails, and it is dropped)."""
        with prepared(engine, claim, schema.recommendations) as table:
            yield self._score(engine, claim, recommender, table, report)

    def _score(
        self,
        engine: sa.Engine,
        claim: registry.Claim,
        recommender: Recommender,
        table: sql.Identifier,
        report: Report,
    ) -> ShardedLists:
        ray = import_ray()
        assert claim.run_id is not None, "the run is recorded before its outputs are written"
        shards = recommender.shards(self.users_per_shard)
        workers = min(self._workers(ray), len(shards))
        report(f"recommendations: {len(shards)} shards of users on {workers} Ray workers")
        # Held here while the workers live: a restarted worker reads them again.
        shared = [
            ray.put(EngineSpec.of(engine)),
            ray.put(recommender.shard(np.empty(0, np.int64))),  # the item side alone
        ]
        writer = ray.remote(_RayShardWriter).options(
            num_cpus=self.worker_cpus,
            num_gpus=self.worker_gpus,
            max_restarts=self.retries,
            max_task_retries=self.retries,
            runtime_env={"env_vars": self._worker_environment()},
        )
        actors = [
            writer.remote(shared, claim.run_id, table, self.worker_cpus) for _ in range(workers)
        ]
        try:
            results = self._dispatch(ray, actors, recommender, shards)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
        with engine.connect() as conn:
            entries = shard_ledger.check(conn, claim.run_id, table, [len(s) for s in shards])
        short = ShortLists(
            sum(e.users_without for e in entries), sum(e.users_fewer_than_k for e in entries)
        )
        found_written = sum(not result.written for result in results)
        if found_written:
            report(
                f"recommendations: {found_written} shards had been committed by an attempt "
                "that died before reporting; written once"
            )
        stats = {
            "ray_workers": workers,
            "ray_shards": len(shards),
            "ray_shards_found_written": found_written,
        }
        return ShardedLists(short, stats)

    def _workers(self, ray: ModuleType) -> int:
        if self.workers is not None:
            return self.workers
        resources = ray.cluster_resources()
        fit = int(resources.get("CPU", 0) // self.worker_cpus)
        if self.worker_gpus:
            fit = min(fit, int(resources.get("GPU", 0) // self.worker_gpus))
        return max(1, fit)

    def _worker_environment(self) -> dict[str, str]:
        """What a worker needs in its environment: quiet TensorFlow; this run's fault injection
        (tests); GPU memory taken as needed where workers may share a GPU, and no GPU at all
        for a worker that reserves none (Ray leaves it seeing every GPU of its node, and
        TensorFlow would take their memory in every such worker)."""
        environment = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        if self.worker_gpus:
            environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        else:
            environment["CUDA_VISIBLE_DEVICES"] = ""
        return environment | faults.environment()

    def _dispatch(
        self,
        ray: ModuleType,
        actors: Sequence[Any],
        recommender: Recommender,
        shards: Sequence[np.ndarray],
    ) -> list[ShardResult]:
        """Each shard to the next free worker; the results in shard order. Raises RecsysError
        when a shard fails for good."""
        queue = iter(enumerate(shards))
        idle = list(actors)
        running: dict[Any, tuple[Any, int]] = {}
        results: dict[int, ShardResult] = {}
        while True:
            while idle and (job := next(queue, None)) is not None:
                shard, users = job
                actor = idle.pop()
                task = actor.write.options(retry_exceptions=list(RETRIED))
                running[task.remote(shard, recommender.user_rows(users))] = (actor, shard)
            if not running:
                return [results[shard] for shard in range(len(shards))]
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, shard = running.pop(done)
            try:
                results[shard] = ray.get(done)
            except ray.exceptions.RayError as exc:
                raise RecsysError(
                    f"shard {shard} of {len(shards)} failed after {self.retries} retries "
                    f"({_cause(ray, exc)}); nothing was published"
                ) from None
            idle.append(actor)
            if self.on_shard is not None:
                self.on_shard(len(results), len(shards))


class _RayShardWriter(ShardWriter):
    """A :class:`ShardWriter` built from the objects the driver put in the object store: handed
    over in a list, so that Ray passes their references rather than their contents."""

    def __init__(self, shared: list[Any], run_id: int, table: sql.Identifier, threads: int) -> None:
        database, catalogue = import_ray().get(shared)
        super().__init__(database, catalogue, run_id, table, threads)


def _cause(ray: ModuleType, exc: Exception) -> str:
    """One line saying why a shard failed, without Ray's remote traceback."""
    if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        return f"{type(exc.cause).__name__}: {str(exc.cause).splitlines()[0]}"
    if isinstance(exc, ray.exceptions.RayActorError):
        message = str(exc).strip()
        if "creation task" in message:  # the worker's constructor raised: not retried
            return f"its worker could not start: {message.splitlines()[-1]}"
        return "its worker died on every attempt"
    return type(exc).__name__
