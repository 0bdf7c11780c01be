"""No password in any output, error message or registry row, whatever way the run ends.

A login role with a password (the test server trusts local connections, so it connects whatever the
password; what matters is where the password could travel) owns a schema of its own and runs the
real ``recsys-job``: a run that publishes (URL from ``RECSYS_DATABASE_URL``), one that fails, one
whose connection is terminated mid-publish (password as ``?password=``), and two commands that
cannot connect (an unknown host with the password in the URL, a closed port with it in
``?password=``; ``versions``, as every command connects the same way and ``run`` is covered in
``test_hardening_database``). The password holds characters that URLs must escape; neither form
of it may appear.
"""

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL

from recsys.errors import ConnectionLost, DatabaseUnavailable
from recsys.storage import database, schema
from recsys.storage.bulk import driver_connection
from tests.integration._hardening_runs import Job, launch, server_now, terminate_job_sessions
from tests.integration._published_versions import cli
from tests.integration._run_data import FAST_OPTIONS, expect_published, populate

PUBLISHED, FAILED, LOST = "pw-published", "pw-failed", "pw-lost"
UNKNOWN_HOST, CLOSED_PORT = "unknown-host", "closed-port"


@dataclass
class Secret:
    password: str
    engine: sa.Engine
    results: dict[str, subprocess.CompletedProcess[str]]
    #: What the lifecycle commands print about the versions, text and JSON.
    listings: list[str]

    def leaked(self, text: str) -> bool:
        return self.password in text or quote(self.password, safe="") in text


def _admin_execute(admin: sa.Engine, statement: sql.Composable) -> None:
    with admin.begin() as conn:
        driver_connection(conn).cursor().execute(statement)


@pytest.fixture(scope="module")
def secret(database_url: URL) -> Iterator[Secret]:
    role, password = f"recsys_pw_{uuid.uuid4().hex[:10]}", f"Pw-{uuid.uuid4().hex}-p@ss/w:rd%"
    name = f"t_pw_{uuid.uuid4().hex[:10]}"
    admin = database.connect(database_url, name)
    _admin_execute(
        admin,
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        ),
    )
    _admin_execute(
        admin,
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(database_url.database), sql.Identifier(role)
        ),
    )
    role_url = database_url.set(username=role, password=password)
    by_query = database_url.set(username=role).update_query_dict({"password": password})
    engine = None
    try:
        migrated = cli(role_url, name, "db", "upgrade")
        assert migrated.exit_code == 0, migrated.output
        engine = database.connect(role_url, name)
        populate(engine)

        from_env = {"RECSYS_DATABASE_URL": role_url.render_as_string(hide_password=False)}

        def start(url: URL | None, *args: str, fault: str = "") -> Job:
            """The job pointed at ``url``, or, without one, at RECSYS_DATABASE_URL (role_url)."""
            given = ["--database-url", url.render_as_string(hide_password=False)] if url else []
            return launch([*given, "--schema", name, *args], fault=fault, env=from_env)

        def run(version: str) -> tuple[str, ...]:
            return ("run", "--model-version", version, *FAST_OPTIONS)

        launched_at = server_now(admin)
        unknown_host = role_url.difference_update_query(["host"]).set(host="no-such-host.invalid")
        jobs = {
            PUBLISHED: start(None, *run(PUBLISHED)),
            FAILED: start(role_url, *run(FAILED), fault="publish:commit"),
            UNKNOWN_HOST: start(unknown_host, "versions"),
            CLOSED_PORT: start(by_query.set(port=1), "versions"),
        }
        lost = start(by_query, *run(LOST), fault="publish:before:pause")
        results = {version: job.finish() for version, job in jobs.items()}
        lost.wait_paused()  # the others have ended: only its sessions are new
        assert terminate_job_sessions(admin, launched_at) >= 2
        lost.resume()
        results[LOST] = lost.finish()

        shown = [("show", version) for version in (PUBLISHED, FAILED, LOST)]
        listings = [
            cli(role_url, name, *args, *form).output
            for args in (("versions",), *shown)
            for form in ((), ("--json",))
        ]
        yield Secret(password, engine, results, listings)
    finally:
        if engine is not None:
            engine.dispose()
        _admin_execute(admin, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        _admin_execute(admin, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        admin.dispose()


def test_the_runs_end_as_expected(secret: Secret) -> None:
    codes = {version: result.returncode for version, result in secret.results.items()}
    assert codes == {
        PUBLISHED: 0,
        FAILED: 1,  # an injected fault: not an expected error, so Python's traceback
        LOST: ConnectionLost.exit_code,
        UNKNOWN_HOST: DatabaseUnavailable.exit_code,
        CLOSED_PORT: DatabaseUnavailable.exit_code,
    }, {version: result.stderr[-2000:] for version, result in secret.results.items()}
    expect_published(secret.engine, PUBLISHED)


def test_no_output_carries_the_password(secret: Secret) -> None:
    for version, result in secret.results.items():
        assert not secret.leaked(result.stdout + result.stderr), version
        assert "database: postgresql://recsys_pw_" in result.stderr, version
    for listing in secret.listings:
        assert not secret.leaked(listing)


@pytest.mark.parametrize("version", (UNKNOWN_HOST, CLOSED_PORT))
def test_a_failed_connection_is_one_masked_line(secret: Secret, version: str) -> None:
    result = secret.results[version]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot connect to postgresql://")
    assert "***" in errors[0] or "%2A%2A%2A" in errors[0]


def test_no_registry_row_carries_the_password(secret: Secret) -> None:
    with secret.engine.connect() as conn:
        rows = {
            table.name: [row._asdict() for row in conn.execute(sa.select(table))]
            for table in (schema.model_versions, schema.version_runs)
        }
    statuses = {row["name"]: row["status"] for row in rows["model_versions"]}
    assert statuses == {PUBLISHED: "published", FAILED: "failed", LOST: "failed"}
    assert all(row["error"] for row in rows["model_versions"] if row["status"] == "failed")
    assert not secret.leaked(json.dumps(rows, default=str))
