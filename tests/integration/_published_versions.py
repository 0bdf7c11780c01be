"""Databases with published versions, for the tests of what analysts and the lifecycle see.

``two_versions``: the synthetic ratings of ``_run_data`` and two versions trained with different
settings (a few seconds). ``publish_outputs``: a version published through the real registry and
publish code but with a handful of made-up output rows — no training — for tests that need many
versions or a version published at a particular moment (prune, the reader role).
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from recsys.pipeline import run
from recsys.run_config import RunConfig
from recsys.storage import schema
from recsys.storage.bulk import array_literal
from recsys.storage.schema import recommendations
from recsys.versions import registry
from recsys.versions.publish import RunTables, publish
from recsys_jobs.cli import main
from tests.integration._run_data import fast_config, populated_schema

#: The two versions of ``two_versions``; v2 is published last.
V1, V2 = "v1", "v2"
TOP_K = 10


@contextmanager
def two_versions(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    """A schema with the synthetic ratings and versions v1 and v2 published (no alias set).

    v2 differs in seed, test ratio and in holding out a validation set (so it has a validation
    figure per epoch, v1 has none).
    """
    with populated_schema(database_url) as (engine, name):
        for version, config in (
            (V1, _with_validation(fast_config(seed=1), 0.0)),
            (V2, _with_validation(fast_config(seed=2, test_ratio=0.2), 0.1)),
        ):
            run(engine, version, config, report=lambda _line: None)
        yield engine, name


def _with_validation(config: RunConfig, val_ratio: float) -> RunConfig:
    return replace(config, train=replace(config.train, val_ratio=val_ratio))


def publish_outputs(
    engine: sa.Engine,
    version: str,
    users: int = 3,
    items: int = 4,
    baseline_ndcg: float = 0.1,
    write_similar: Callable[[RunTables], object] | None = None,
    first_user: int = 1,
) -> int:
    """Publish ``version`` with tiny outputs for ``users`` users from ``first_user`` on and
    movies 1..items; its run id.

    Its one evaluation figure is NDCG@10: 0.2 for the model, ``baseline_ndcg`` for popularity.
    ``write_similar`` writes its similar items instead of made-up ones."""
    claim = registry.acquire(engine, version, replace=False)
    try:
        registry.start(engine, claim, {"dim": 2})
        user_ids = np.arange(first_user, first_user + users)
        movie_ids = np.arange(1, items + 1)
        outputs = {
            "training_history": pd.DataFrame(
                {
                    "epoch": [1],
                    "loss": [0.69],
                    "validation_metric": ["ndcg@10"],
                    "validation_value": [0.1],
                    "seconds": [0.1],
                }
            ),
            "evaluation_results": pd.DataFrame(
                {
                    "model": ["lightgcn", "popularity"],
                    "metric": ["ndcg", "ndcg"],
                    "k": [10, 10],
                    "value": [0.2, baseline_ndcg],
                    "users_counted": [users, users],
                }
            ),
            "user_embeddings": pd.DataFrame(
                {"user_id": user_ids, "embedding": [array_literal(np.ones(2))] * users}
            ),
            "item_embeddings": pd.DataFrame(
                {"movie_id": movie_ids, "embedding": [array_literal(np.ones(2))] * items}
            ),
            "similar_items": pd.DataFrame(
                {
                    "movie_id": np.repeat(movie_ids, 2),
                    "rank": np.tile([1, 2], items),
                    "similar_movie_id": ((movie_ids[:, None] + [0, 1]) % items + 1).ravel(),
                    "score": 0.5,
                }
            ),
            "recommendations": pd.DataFrame(
                {
                    "user_id": np.repeat(user_ids, 2),
                    "rank": np.tile([1, 2], users),
                    "movie_id": np.tile(movie_ids[:2], users),
                    "score": 1.0,
                    "source": "model",
                }
            ),
        }
        record = {"data_stats": {"users": users}, "phase_seconds": {}, "code_version": "test"}

        def write_outputs(tables: RunTables) -> dict:
            for table in schema.OUTPUT_TABLES:
                if table is schema.similar_items and write_similar is not None:
                    write_similar(tables)
                else:
                    tables.copy_frame(table, outputs[table.name])
            return record

        publish(engine, claim, write_outputs)
        return claim.run_id
    finally:
        claim.release()


@dataclass(frozen=True)
class Overlap:
    """Agreement of two versions' top-k lists, computed here from their recommendation rows."""

    users: int
    mean_jaccard: float
    identical_share: float


def overlap(engine: sa.Engine, version_a: str, version_b: str, k: int) -> Overlap:
    """Jaccard@k (shared ÷ either) of each user's top-k sets in the two versions, averaged over
    the users either version recommends to; and the share of users whose sets are identical."""
    recs = recommendations
    lists: dict[str, dict[int, set[int]]] = {
        version_a: defaultdict(set),
        version_b: defaultdict(set),
    }
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(recs.c.version, recs.c.user_id, recs.c.movie_id).where(
                recs.c.version.in_([version_a, version_b]), recs.c.rank <= k
            )
        )
        for version, user, movie in rows:
            lists[version][user].add(movie)
    a, b = lists[version_a], lists[version_b]
    users = set(a) | set(b)
    jaccard = [len(a[u] & b[u]) / len(a[u] | b[u]) for u in users]
    return Overlap(len(users), float(np.mean(jaccard)), float(np.mean([j == 1 for j in jaccard])))


def cli(database_url: URL, schema: str, *args: str) -> Result:
    """``recsys-job --database-url ... --schema ... ARGS`` in this process."""
    url = database_url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, "--schema", schema, *args])
