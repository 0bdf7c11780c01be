"""What the ``run --ray`` tests share: the ray package (skipped where it is not installed,
failed in CI, which installs it with the test extra), the password their database URLs carry,
and a version's rows to compare."""

from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from recsys.storage import schema
from tests.conftest import in_ci

#: In the database URL of every run with Ray. Trust authentication ignores it, so the runs work;
#: it must appear nowhere in Ray's files or state.
SECRET = "S3cretXYZ"


def import_ray() -> ModuleType:
    """``ray``, or the calling test module skipped (failed where ``CI`` is set)."""
    try:
        import ray
    except ImportError:
        if in_ci():
            pytest.fail("the ray package is missing; CI installs it with '.[test]'", pytrace=False)
        pytest.skip("ray is not installed (pip install 'recsys[ray]')", allow_module_level=True)
    return ray


def whole_lists(conn: sa.Connection, version: str) -> list[tuple]:
    """Every recommendation row of a version, every column."""
    recs = schema.recommendations
    query = (
        sa.select(recs.c.user_id, recs.c.rank, recs.c.movie_id, recs.c.score, recs.c.source)
        .where(recs.c.version == version)
        .order_by(recs.c.user_id, recs.c.rank)
    )
    return [tuple(row) for row in conn.execute(query)]


def embeddings(conn: sa.Connection, version: str) -> list[tuple]:
    """Every user's and item's final embedding in a version (the same model, if equal)."""
    rows: list[tuple] = []
    for table in (schema.user_embeddings, schema.item_embeddings):
        key = table.c.user_id if "user_id" in table.c else table.c.movie_id
        query = sa.select(key, table.c.embedding).where(table.c.version == version).order_by(key)
        rows += [tuple(row) for row in conn.execute(query)]
    return rows


def files_holding(folder: Path, text: str) -> list[Path]:
    """Files under ``folder`` (links not followed) whose bytes contain ``text``."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes()
    ]
