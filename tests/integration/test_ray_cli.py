"""``recsys-job run --ray local`` as a scheduler would start it: a process that starts a Ray of
this machine's cores, scores on it, publishes the lists the local path publishes, and stops it;
the database URL, password included, comes from the environment and is in no file Ray wrote.

Its own module: the Ray it starts must not meet the one ``test_ray_scoring`` keeps running.
"""

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

from recsys.pipeline import run
from tests.integration._hardening_runs import launch
from tests.integration._ray import SECRET, embeddings, files_holding, import_ray, whole_lists
from tests.integration._run_data import FAST_OPTIONS, fast_config, populated_schema, quiet

import_ray()

SEED = 9


def test_run_ray_local_publishes_the_local_lists_and_leaves_no_password(database_url: URL) -> None:
    url = database_url.set(password=SECRET)
    # Ray's files go under RAY_TMPDIR; a short path, as its sockets live there too.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    try:
        with populated_schema(url) as (engine, name):
            run(engine, "local", fast_config(SEED), report=quiet)
            args = ["--schema", name, "run", "--model-version", "cli", *FAST_OPTIONS]
            environment = {
                "RECSYS_DATABASE_URL": url.render_as_string(hide_password=False),
                "RAY_TMPDIR": str(ray_tmp),
            }
            job = launch([*args, "--seed", str(SEED), "--ray", "local"], env=environment)
            result = job.finish()
            assert result.returncode == 0, result.stderr
            # A Ray of the cores this process may use; a worker per core, at most one a shard.
            cores = len(os.sched_getaffinity(0))
            assert f"ray: a local Ray: 1 node, {cores} CPUs" in result.stderr
            workers = min(cores, 2)
            assert f"recommendations: 2 shards of users on {workers} Ray workers" in result.stdout
            with engine.connect() as conn:
                assert embeddings(conn, "cli") == embeddings(conn, "local")
                assert whole_lists(conn, "cli") == whole_lists(conn, "local")
        assert list(ray_tmp.rglob("*.log"))  # Ray wrote its session there
        assert files_holding(ray_tmp, SECRET) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
