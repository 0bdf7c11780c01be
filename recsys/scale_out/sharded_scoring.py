"""The driver's side of ``run --ray``: every user's recommendations scored and written in shards
by Ray workers, before the publish adopts them.

The workers (:class:`recsys.scale_out.shard_writer.ShardWriter`, Ray actors) are started when the
run begins (:meth:`RayScoring.started`), in the background: each imports TensorFlow and opens its
database connection while the driver reads the data and trains, so that scoring does not wait
for them. They are stopped once the shards are written, and whenever the run ends before that.

At scoring time the run's recommendations table is created and committed first (unattached, so
invisible: :func:`recsys.versions.publish.prepared`). The item side of the recommender (item ids,
embeddings, popularity) goes into Ray's object store once; users go out in shards
(:meth:`recsys.scoring.recommender.Recommender.shards`: cut where the local path cuts its scoring
chunks, so every score is the local path's to the bit), one at a time to each free worker, a
shard's user-side arrays travelling only to the worker that scores it. Each worker writes a
shard's rows and its ledger row in one transaction of its own. Once every shard has reported,
the ledger must account for every shard and every row of the table
(:func:`recsys.versions.shard_ledger.check`); the publish then adopts the table in its one
transaction.

A worker that dies (killed, out of memory, its node gone) is restarted and its shard retried,
as is a shard whose database connection failed, up to ``retries`` times; a retry of a shard
that had committed writes nothing. A shard that fails for good stops the run: the workers are
stopped, the table dropped, nothing published.

The database URL reaches the workers inside the object store only, in an
:class:`~recsys.storage.database.EngineSpec` whose repr masks the password: never as a task or
actor argument of its own, in an actor's name or runtime environment, or in a log line.
"""

import os
import time
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
from recsys.scale_out.ray_cluster import import_ray
from recsys.scale_out.shard_writer import ShardResult, ShardTarget, ShardWriter
from recsys.scoring.recommender import Recommender, ShortLists
from recsys.storage import schema
from recsys.storage.database import EngineSpec
from recsys.versions import registry, shard_ledger
from recsys.versions.publish import RunTables, prepared

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
    #: with ``worker_gpus``) hold. Those beyond the number of shards are stopped unused.
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
    def started(self, engine: sa.Engine, report: Report) -> Iterator["WorkerPool"]:
        """The workers, started now and in the background (a run starts them when it begins,
        to have them ready when its model is trained); stopped after the block, however it
        ends."""
        pool = WorkerPool(self, engine, report)
        try:
            yield pool
        finally:
            pool.stop()


class WorkerPool:
    """A run's shard-writing workers (:meth:`RayScoring.started`): they write one run's lists
    (:meth:`written`) and are stopped after it."""

    def __init__(self, settings: RayScoring, engine: sa.Engine, report: Report) -> None:
        self._ray = import_ray()
        self._settings = settings
        # Held here while the workers live: a restarted worker reads it again. In a list, so
        # that Ray hands the actor its reference, not its contents, as an argument.
        self._database = [self._ray.put(EngineSpec.of(engine))]
        writer = self._ray.remote(_RayShardWriter).options(
            num_cpus=settings.worker_cpus,
            num_gpus=settings.worker_gpus,
            max_restarts=settings.retries,
            max_task_retries=settings.retries,
            runtime_env={"env_vars": _worker_environment(settings)},
        )
        count = _worker_count(settings, self._ray)
        self._actors = [writer.remote(self._database, settings.worker_cpus) for _ in range(count)]
        # Done once a worker's constructor has run: not waited for until scoring.
        self._ready = [actor.ready.remote() for actor in self._actors]
        report(f"ray: starting {count} workers for the recommendations, in the background")

    def ready(self) -> float:
        """Seconds spent here waiting for every worker to have started (0 when they all had);
        raises RecsysError if one cannot start."""
        waiting = time.perf_counter()
        try:
            self._ray.get(self._ready)
        except self._ray.exceptions.RayError as exc:
            raise RecsysError(
                f"Ray workers for the recommendations did not start ({_cause(self._ray, exc)}); "
                "nothing was published"
            ) from None
        return time.perf_counter() - waiting

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
            try:
                sharded = self._score(engine, claim, recommender, table, report)
            finally:
                self.stop()  # their memory is the publish's now
            yield sharded

    def stop(self) -> None:
        """Every worker stopped (again: nothing)."""
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
        self._actors = []

    def _score(
        self,
        engine: sa.Engine,
        claim: registry.Claim,
        recommender: Recommender,
        table: sql.Identifier,
        report: Report,
    ) -> ShardedLists:
        assert claim.run_id is not None, "the run is recorded before its outputs are written"
        shards = recommender.shards(self._settings.users_per_shard)
        actors = self._actors[: len(shards)]
        waited = self.ready()
        report(
            f"recommendations: {len(shards)} shards of users on {len(actors)} Ray workers "
            f"(waited {waited:.1f} s for them to start)"
        )
        catalogue = recommender.shard(np.empty(0, np.int64))  # the item side alone
        target = self._ray.put(ShardTarget(catalogue, claim.run_id, table))
        results = self._dispatch(actors, target, recommender, shards)
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
            "ray_workers": len(actors),
            "ray_shards": len(shards),
            "ray_shards_found_written": found_written,
            "ray_workers_waited_seconds": round(waited, 3),
        }
        return ShardedLists(short, stats)

    def _dispatch(
        self,
        actors: Sequence[Any],
        target: Any,
        recommender: Recommender,
        shards: Sequence[np.ndarray],
    ) -> list[ShardResult]:
        """Each shard to the next free worker; the results in shard order. Raises RecsysError
        when a shard fails for good."""
        ray, retries, on_shard = self._ray, self._settings.retries, self._settings.on_shard
        queue = iter(enumerate(shards))
        idle = list(actors)
        running: dict[Any, tuple[Any, int]] = {}
        results: dict[int, ShardResult] = {}
        while True:
            while idle and (job := next(queue, None)) is not None:
                shard, users = job
                actor = idle.pop()
                task = actor.write.options(retry_exceptions=list(RETRIED))
                running[task.remote(target, shard, recommender.user_rows(users))] = (actor, shard)
            if not running:
                return [results[shard] for shard in range(len(shards))]
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, shard = running.pop(done)
            try:
                results[shard] = ray.get(done)
            except ray.exceptions.RayError as exc:
                raise RecsysError(
                    f"shard {shard} of {len(shards)} failed after {retries} retries "
                    f"({_cause(ray, exc)}); nothing was published"
                ) from None
            idle.append(actor)
            if on_shard is not None:
                on_shard(len(results), len(shards))


def _worker_count(settings: RayScoring, ray: ModuleType) -> int:
    if settings.workers is not None:
        return settings.workers
    resources = ray.cluster_resources()
    fit = int(resources.get("CPU", 0) // settings.worker_cpus)
    if settings.worker_gpus:
        fit = min(fit, int(resources.get("GPU", 0) // settings.worker_gpus))
    return max(1, fit)


def _worker_environment(settings: RayScoring) -> dict[str, str]:
    """What a worker needs in its environment: quiet TensorFlow; this run's fault injection
    (tests); GPU memory taken as needed where workers may share a GPU, and no GPU at all
    for a worker that reserves none (Ray leaves it seeing every GPU of its node, and
    TensorFlow would take their memory in every such worker)."""
    environment = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if settings.worker_gpus:
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    else:
        environment["CUDA_VISIBLE_DEVICES"] = ""
    return environment | faults.environment()


class _RayShardWriter(ShardWriter):
    """A :class:`ShardWriter` whose connection spec comes from the object store, handed over in
    a list (so that Ray passes its reference, not its contents, as the argument)."""

    def __init__(self, database: list[Any], threads: int) -> None:
        (spec,) = import_ray().get(database)
        super().__init__(spec, threads)

    def ready(self) -> None:
        """Returns once the worker has started (Ray runs it after the constructor)."""


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
