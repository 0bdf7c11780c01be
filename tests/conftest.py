"""Where the test database comes from, and per-test schemas inside it.

Order: ``RECSYS_TEST_DATABASE_URL`` (a fresh database is created for the session and dropped
afterwards), else a Docker engine via testcontainers, else the embedded ``pgserver``. Every
integration test gets a schema of its own, migrated to head, so tests never see each other's rows.
Tests on real data take the ``ml100k`` fixture: skipped where the data is absent, failed in CI.
"""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.storage import database, migrate

REPO = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """Whether a CI job runs the suite (``CI`` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require_real_data(path: Path, hint: str) -> Path:
    """``path`` if it exists. Otherwise the test is skipped on a developer's machine but fails
    in CI: there a missing data folder is a broken set-up, and a skip would hide it as green."""
    if path.exists():
        return path
    reason = f"real data not found at {path} ({hint})"
    if in_ci():
        pytest.fail(f"{reason}; CI must provide it", pytrace=False)
    pytest.skip(reason)


def require_native_kernel() -> None:
    """Skips a test of recsys's CSR kernel where it could not be built, except in CI, whose
    machine has the compiler and CPU it needs: there a build that fails is a broken set-up."""
    from recsys.model.native_kernel import csr_kernel

    kernel = csr_kernel()
    if kernel.available:
        return
    if in_ci():
        pytest.fail(f"recsys's CSR kernel is not built in CI: {kernel.description}", pytrace=False)
    pytest.skip(kernel.description)


@pytest.fixture
def ml100k() -> Path:
    """MovieLens-100K (``RECSYS_ML100K`` overrides ``../shared/data/ml-100k``)."""
    folder = Path(os.environ.get("RECSYS_ML100K", REPO.parent / "shared" / "data" / "ml-100k"))
    return require_real_data(folder / "u.data", "set RECSYS_ML100K").parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _fresh_database(server_url: URL) -> Iterator[URL]:
    """Create a uniquely named database on ``server_url``'s server; drop it afterwards."""
    name = f"recsys_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    configured = os.environ.get("RECSYS_TEST_DATABASE_URL")
    if configured:
        yield from _fresh_database(database.parse_url(configured))
    elif _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield database.parse_url(container.get_connection_url())
    else:
        from recsys.storage.embedded import embedded_url

        yield database.parse_url(embedded_url(tmp_path_factory.mktemp("pgdata")))


@pytest.fixture
def schema(database_url: URL) -> Iterator[str]:
    """A fresh schema name for this test, dropped (with everything in it) afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def bare_engine(database_url: URL, schema: str) -> Iterator[sa.Engine]:
    """An engine on the test schema, which has not been migrated."""
    engine = database.connect(database_url, schema)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: sa.Engine, schema: str) -> sa.Engine:
    """An engine on a test schema migrated to head."""
    migrate.upgrade(bare_engine, schema)
    return bare_engine
