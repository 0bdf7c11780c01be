"""``run --ray``: recommendations scored and written in shards by Ray workers, on a local Ray of
2 CPUs against the real PostgreSQL.

The same lists as the local path, to the bit of every score; a worker killed mid-shard, or after
its shard committed, and the version still has every row once; a shard failing for good fails
the run and leaves nothing; a driver killed outright leaves a table that ``prune`` drops; and the
database password, which every run here carries, appears nowhere in Ray's files or state. The
workers exist from before training, and a run failing before scoring stops them.

One Ray serves the module (starting it takes seconds); the runs share one ingested schema and
each writes versions of its own name. Without the ray package the module is skipped, or fails
where ``CI`` is set.
"""

import dataclasses
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import scipy.sparse as sp
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL

from recsys import faults
from recsys.errors import RecsysError
from recsys.pipeline import run
from recsys.scoring.recommender import Recommender, ShortLists
from recsys.storage import schema
from recsys.storage.bulk import driver_connection, schema_of
from recsys.versions import registry
from recsys.versions.publish import partition_name
from tests.integration._hardening_runs import assert_nothing_visible, launch, visible
from tests.integration._published_versions import cli
from tests.integration._ray import SECRET, embeddings, files_holding, import_ray, whole_lists
from tests.integration._run_data import (
    FAST_OPTIONS,
    N_USERS,
    fast_config,
    populated_schema,
    quiet,
    run_rows,
    stray_tables,
    version_row,
    wait_until_not_live,
)

ray = import_ray()

from ray.util import state  # noqa: E402 - after the check for ray

from recsys.scale_out.shard_writer import APPLICATION_NAME  # noqa: E402
from recsys.scale_out.sharded_scoring import RayScoring, WorkerPool  # noqa: E402 - imports ray

SEED = 5
Found = TypeVar("Found")
#: Two workers; shards small enough that the fallback users get shards of their own.
SCORING = RayScoring(workers=2, users_per_shard=8)


@dataclasses.dataclass
class Cluster:
    engine: sa.Engine
    schema: str
    url: URL
    #: Ray's root folder for this module: every file of its session is under it.
    ray_dir: Path
    address: str


@pytest.fixture(scope="module")
def cluster(database_url: URL) -> Iterator[Cluster]:
    """A local Ray of 2 CPUs; the synthetic ratings behind a URL with a password; and version
    ``local``, published without Ray, with the seed every run here uses."""
    # A short path: Ray's sockets live under it, and a socket's path has at most 107 bytes.
    ray_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    ray.init(num_cpus=2, _temp_dir=str(ray_dir), include_dashboard=True)
    url = database_url.set(password=SECRET)
    try:
        with populated_schema(url) as (engine, name):
            run(engine, "local", fast_config(SEED), report=quiet)
            yield Cluster(engine, name, url, ray_dir, ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(ray_dir, ignore_errors=True)


def _ledger(conn: sa.Connection, run_id: int) -> list[tuple[int, int, int]]:
    """(shard, users, rows) of each shard in the run's ledger."""
    ledger = schema.recommendation_shards
    query = (
        sa.select(ledger.c.shard, ledger.c.user_count, ledger.c.row_count)
        .where(ledger.c.run_id == run_id)
        .order_by(ledger.c.shard)
    )
    return [tuple(row) for row in conn.execute(query)]


def _published_as_local(cluster: Cluster, version: str) -> sa.Row:
    """The version is published with version ``local``'s embeddings and lists, row for row, and
    its ledger counts every shard once; its registry row."""
    with cluster.engine.connect() as conn:
        row = version_row(conn, version)
        assert row.status == "published", row.error
        assert embeddings(conn, version) == embeddings(conn, "local")  # the same model
        lists = whole_lists(conn, version)
        assert lists == whole_lists(conn, "local")
        ledger = _ledger(conn, row.run_id)
    assert [shard for shard, _, _ in ledger] == list(range(row.data_stats["ray_shards"]))
    assert sum(users for _, users, _ in ledger) == N_USERS
    assert sum(rows for _, _, rows in ledger) == len(lists)
    return row


def test_ray_publishes_the_local_lists_to_the_bit(cluster: Cluster) -> None:
    run(cluster.engine, "on-ray", fast_config(SEED), report=quiet, scale_out=SCORING)
    row = _published_as_local(cluster, "on-ray")
    stats = row.data_stats
    assert (stats["ray_workers"], stats["ray_shards_found_written"]) == (2, 0)
    assert stats["ray_shards"] == 2  # the model's users (one scoring chunk), the fallback users
    with cluster.engine.connect() as conn:
        local = version_row(conn, "local").data_stats
    for key in ("users_without_recommendations", "users_with_fewer_than_k"):
        assert stats[key] == local[key]


def _this_ray() -> dict[str, str]:
    """The state API's address of the module's Ray. Without one it looks for local Ray
    sessions, and fails where another suite's Ray runs on the machine."""
    return {"address": ray.get_runtime_context().gcs_address}


def _live_workers() -> list[str]:
    """The states of the shard-writing actors Ray has not recorded dead."""
    writers = [("class_name", "=", "_RayShardWriter")]
    actors = state.list_actors(
        filters=writers, limit=10_000, raise_on_missing_output=False, **_this_ray()
    )
    return [actor.state for actor in actors if actor.state != "DEAD"]


@pytest.fixture
def kept_pools(monkeypatch: pytest.MonkeyPatch) -> list[WorkerPool]:
    """Every worker pool a run starts, kept here: Ray would stop actors whose handles all went,
    so the workers then stop only if the run stops them."""
    pools: list[WorkerPool] = []
    start = WorkerPool.__init__

    def kept(pool: WorkerPool, *args: object) -> None:
        start(pool, *args)
        pools.append(pool)

    monkeypatch.setattr(WorkerPool, "__init__", kept)
    return pools


class _WorkersSeen:
    """A run's ``report``: the live workers when the run reports its data (before training), its
    first epoch (training) and its shards (scoring)."""

    def __init__(self) -> None:
        self.at: dict[str, list[str]] = {}

    def __call__(self, line: str) -> None:
        for moment in ("data:", "epoch   1:", "recommendations:"):
            if line.startswith(moment):
                self.at.setdefault(moment, _live_workers())


def test_workers_start_as_the_run_begins_and_stop_once_the_shards_are_written(
    cluster: Cluster, kept_pools: list[WorkerPool]
) -> None:
    """The workers exist before training (started in the background while the driver reads the
    data) and still while it trains; none is left once the run has published."""
    assert _eventually(lambda: not _live_workers()), "workers of an earlier test still live"
    seen = _WorkersSeen()
    run(cluster.engine, "started-early", fast_config(SEED), report=seen, scale_out=SCORING)
    assert len(kept_pools) == 1
    assert len(seen.at["data:"]) == len(seen.at["epoch   1:"]) == 2, seen.at
    assert len(seen.at["recommendations:"]) == 2
    assert _eventually(lambda: not _live_workers()), _live_workers()
    row = _published_as_local(cluster, "started-early")
    assert row.data_stats["ray_workers_waited_seconds"] >= 0


def test_a_run_failing_before_scoring_stops_its_workers(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, kept_pools: list[WorkerPool]
) -> None:
    """Training fails after the workers started: the run fails as without Ray, its workers are
    stopped (none left live), and nothing of the version is visible."""
    assert _eventually(lambda: not _live_workers()), "workers of an earlier test still live"
    monkeypatch.setenv(faults.ENV, "training")
    seen = _WorkersSeen()
    with pytest.raises(faults.InjectedFault):
        run(cluster.engine, "failed-training", fast_config(SEED), report=seen, scale_out=SCORING)
    assert len(kept_pools) == 1
    assert len(seen.at["data:"]) == 2 and "recommendations:" not in seen.at, seen.at
    assert _eventually(lambda: not _live_workers()), _live_workers()
    with cluster.engine.connect() as conn:
        assert version_row(conn, "failed-training").status == "failed"
        (attempt,) = run_rows(conn, "failed-training")
        assert_nothing_visible(conn, "failed-training", [attempt.run_id])


def test_shards_cut_at_scoring_chunks_give_one_process_lists(engine: sa.Engine) -> None:
    """Many shards of two scoring chunks each, integer embeddings (ties at every cut), rated
    items excluded: the rows the workers commit are those ``chunks`` gives in this process."""
    rng = np.random.default_rng(3)
    n_users, n_items = 90, 40
    recommender = Recommender(
        user_ids=np.arange(1000, 1000 + n_users, dtype=np.int64),
        item_ids=np.arange(500, 500 + n_items, dtype=np.int64),
        user_emb=rng.integers(-2, 3, (n_users, 6)).astype(np.float32),
        item_emb=rng.normal(size=(n_items, 6)).astype(np.float32),
        popularity=rng.integers(0, 5, n_items).astype(np.float32),
        trained=rng.random(n_users) < 0.8,
        exclude=sp.csr_matrix(rng.random((n_users, n_items)) < 0.3),
        k=7,
        chunk_users=5,
    )
    expected, short = [], ShortLists()
    for chunk in recommender.chunks():
        users, rank, movie, score, source = chunk.columns
        expected += zip(users.tolist(), rank.tolist(), movie.tolist(), score, strict=True)
        short.add(chunk.lengths, recommender.k)
    assert source == "fallback" and len(expected) > 0

    claim = registry.acquire(engine, "shards", replace=False)
    try:
        registry.start(engine, claim, {})
        scoring = dataclasses.replace(SCORING, users_per_shard=10)
        with (
            scoring.started(engine, quiet) as workers,
            workers.written(engine, claim, recommender, quiet) as lists,
            engine.connect() as conn,
        ):
            table = sql.Identifier(
                schema_of(conn), partition_name(schema.recommendations, claim.run_id)
            )
            cursor = driver_connection(conn).cursor()
            written = cursor.execute(
                sql.SQL("SELECT user_id, rank, movie_id, score FROM {}").format(table)
            ).fetchall()
            shards = _ledger(conn, claim.run_id)
    finally:
        claim.release()
    # Compared as float32: a REAL arrives as the shortest decimal that reads back as it.
    assert sorted((*row[:3], np.float32(row[3])) for row in written) == sorted(expected)
    assert len(shards) == lists.stats["ray_shards"] == len(recommender.shards(10)) >= 9
    assert lists.short == short


def test_a_worker_killed_mid_shard_is_retried_and_every_row_written_once(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The first worker to send rows dies before its commit; Ray restarts it, the shard runs
    again and commits; the fault fires once (the marker file), for the retry to get through."""
    monkeypatch.setenv(faults.ENV, "rows:recommendations:kill")
    monkeypatch.setenv(faults.ONCE_ENV, str(tmp_path / "fired"))
    run(cluster.engine, "killed-mid-shard", fast_config(SEED), report=quiet, scale_out=SCORING)
    assert (tmp_path / "fired").exists()
    row = _published_as_local(cluster, "killed-mid-shard")
    assert row.data_stats["ray_shards_found_written"] == 0


def test_a_shard_retried_after_its_commit_writes_nothing_twice(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker dies between its commit and its report: the retry finds the ledger row."""
    monkeypatch.setenv(faults.ENV, "shard:committed:kill")
    monkeypatch.setenv(faults.ONCE_ENV, str(tmp_path / "fired"))
    run(cluster.engine, "killed-after-commit", fast_config(SEED), report=quiet, scale_out=SCORING)
    assert (tmp_path / "fired").exists()
    row = _published_as_local(cluster, "killed-after-commit")
    assert row.data_stats["ray_shards_found_written"] == 1


def test_a_worker_killed_before_its_commit_is_retried_and_written_once(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker dies with its ledger row and every row of its shard written, uncommitted: the
    dead attempt's transaction goes with its session, and the retry writes the shard (it does
    not find it written)."""
    monkeypatch.setenv(faults.ENV, "shard:complete:kill")
    monkeypatch.setenv(faults.ONCE_ENV, str(tmp_path / "fired"))
    run(cluster.engine, "killed-before-commit", fast_config(SEED), report=quiet, scale_out=SCORING)
    assert (tmp_path / "fired").exists()
    row = _published_as_local(cluster, "killed-before-commit")
    assert row.data_stats["ray_shards_found_written"] == 0


def _shard_sessions_in_a_transaction(engine: sa.Engine) -> list[int]:
    """Backend pids of the workers' sessions of this database that are inside a transaction."""
    with engine.connect() as conn:
        query = sa.text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
            " AND datname = current_database() AND xact_start IS NOT NULL"
        )
        return list(conn.execute(query, {"name": APPLICATION_NAME}).scalars())


def _paused_worker_pid() -> int:
    """The process of the one live shard-writing actor (the test runs one worker; those of
    earlier runs are recorded dead a moment after they stop)."""
    writers = [("class_name", "=", "_RayShardWriter"), ("state", "=", "ALIVE")]

    def the_one() -> list[int]:
        actors = state.list_actors(filters=writers, raise_on_missing_output=False, **_this_ray())
        return [actor.pid for actor in actors] if len(actors) == 1 else []

    (pid,) = _eventually(the_one)
    return pid


def test_a_shard_whose_session_is_terminated_is_retried(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker pauses mid-shard (rows sent, nothing committed); the test terminates its
    database session with ``pg_terminate_backend`` and lets it go on: its write fails on the lost
    connection, the shard is tried again on a new one, and the lists are the local path's."""
    monkeypatch.setenv(faults.ENV, "rows:recommendations:pause")
    monkeypatch.setenv(faults.ONCE_ENV, str(tmp_path / "fired"))
    scoring = dataclasses.replace(SCORING, workers=1)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            run, cluster.engine, "session-lost", fast_config(SEED), report=quiet, scale_out=scoring
        )
        pids = _eventually(
            lambda: (
                (tmp_path / "fired").exists() and _shard_sessions_in_a_transaction(cluster.engine)
            ),
            timeout=180,
        )
        (session,) = pids
        with cluster.engine.connect() as conn:
            terminated = conn.execute(sa.select(sa.func.pg_terminate_backend(session))).scalar()
        assert terminated
        os.kill(_paused_worker_pid(), signal.SIGUSR1)
        running.result(timeout=240)
    assert session not in _shard_sessions_in_a_transaction(cluster.engine)
    row = _published_as_local(cluster, "session-lost")
    assert row.data_stats["ray_shards_found_written"] == 0


def test_a_shard_failing_for_good_fails_the_run_and_leaves_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every attempt's worker dies mid-shard: after the retries the run fails, its table is
    dropped, and nothing of the version is visible anywhere."""
    monkeypatch.setenv(faults.ENV, "rows:recommendations:kill")
    scoring = dataclasses.replace(SCORING, retries=1)
    with pytest.raises(RecsysError, match=r"shard \d+ of \d+ failed after 1 retries"):
        run(cluster.engine, "failing-shard", fast_config(SEED), report=quiet, scale_out=scoring)
    with cluster.engine.connect() as conn:
        row = version_row(conn, "failing-shard")
        assert row.status == "failed" and "failed after 1 retries" in row.error
        (attempt,) = run_rows(conn, "failing-shard")
        assert attempt.status == "failed"
        assert_nothing_visible(conn, "failing-shard", [attempt.run_id])


def test_a_killed_driver_leaves_a_table_the_next_run_or_prune_drops(cluster: Cluster) -> None:
    """``recsys-job run --ray ADDRESS`` joining this module's Ray, killed after the shards
    committed and before the publish: the version is stale and its recommendations table stays,
    unattached (invisible), for ``prune`` to drop; the next run of the version drops it."""
    version = "driver-killed"
    args = ["--schema", cluster.schema, "run", "--model-version", version, *FAST_OPTIONS]
    options = ["--seed", str(SEED), "--ray", cluster.address, "--ray-workers", "2"]
    # The URL in the environment: with --ray, a password on the command line is refused.
    environment = {"RECSYS_DATABASE_URL": cluster.url.render_as_string(hide_password=False)}
    job = launch([*args, *options], fault="publish:before:kill", env=environment)
    result = job.finish()
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert wait_until_not_live(cluster.engine, version)
    with cluster.engine.connect() as conn:
        (attempt,) = run_rows(conn, version)
        left = partition_name(schema.recommendations, attempt.run_id)
        assert stray_tables(conn) == [left]
        assert sum(rows for _, _, rows in _ledger(conn, attempt.run_id)) > 0

        assert set(visible(conn, version).values()) == {0}

    planned = cli(cluster.url, cluster.schema, "prune", "--keep", "100", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert f"would drop stray tables: {left}" in planned.output

    run(cluster.engine, version, fast_config(SEED), report=quiet, scale_out=SCORING)
    _published_as_local(cluster, version)
    with cluster.engine.connect() as conn:
        assert stray_tables(conn) == []
        abandoned, succeeded = run_rows(conn, version)
    assert (abandoned.status, succeeded.status) == ("failed", "succeeded")
    assert "abandoned" in abandoned.error


def test_the_password_is_in_no_file_or_state_of_ray(cluster: Cluster) -> None:
    """After every run above (failures and retries included), no file under Ray's folder (logs,
    events, the dashboard's) and no actor, task, job or worker Ray lists holds the password.
    A canary proves the search sees what a worker prints and what a task is named."""
    canary = "CanaryQ7W"

    @ray.remote
    def chirp() -> None:
        print(canary, flush=True)

    ray.get(chirp.options(name=f"chirp-{canary}").remote())

    def listed() -> str:
        """What Ray's state API lists, once it lists the canary's task."""
        limit = {"limit": 10_000, "raise_on_missing_output": False, **_this_ray()}
        listing = repr(
            [
                state.list_actors(detail=True, **limit),
                state.list_tasks(detail=True, **limit),
                state.list_jobs(**_this_ray()),
                state.list_workers(detail=True, **limit),
            ]
        )
        return listing if canary in listing else ""

    assert cluster.url.password == SECRET
    # Ray reports a task to its state, and a worker's output to its log, a moment later.
    listing = _eventually(listed)
    assert listing, "the canary's task never showed in Ray's state"
    assert _eventually(lambda: files_holding(cluster.ray_dir, canary))
    at = listing.find(SECRET)
    assert at < 0, f"the password is listed by Ray: …{listing[max(0, at - 300) : at + 50]}…"
    assert files_holding(cluster.ray_dir, SECRET) == []


def _eventually(found: Callable[[], Found], timeout: float = 30.0) -> Found:
    """``found()`` once it is truthy, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := found()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return result
