"""Which database a command uses: ``--database-url``, then ``RECSYS_DATABASE_URL``, then the
embedded server — and the README's first command, ``recsys-job demo`` with no database at all.

CI sets ``RECSYS_TEST_DATABASE_URL``, so nothing else in the suite runs the embedded path. The demo
here runs as a new user would: the installed ``recsys-job`` in a process of its own, no URL in its
environment, only ``RECSYS_HOME`` pointing at a temporary folder. The server it starts must be gone
when it exits (``pgserver`` stops it with its last user); a second command finds the version.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from recsys.storage.database import masked
from recsys_jobs.cli import main
from tests.integration._run_data import console_script

#: A server nobody listens on: choosing it fails the command (exit 3).
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nowhere"
#: Variables that would point the demo anywhere but at the embedded server's defaults.
NOT_INHERITED = ("RECSYS_DATABASE_URL", "RECSYS_TEST_DATABASE_URL", "RECSYS_SCHEMA", "RECSYS_FAULT")


def _job(*args: str, env: dict[str, str | None]) -> Result:
    """``recsys-job ARGS`` in this process with ``env`` over the environment (None: unset)."""
    return CliRunner().invoke(main, list(args), env=env)


def test_the_option_wins_over_the_environment(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    url = database_url.render_as_string(hide_password=False)
    env = {"RECSYS_DATABASE_URL": UNREACHABLE, "RECSYS_HOME": str(tmp_path)}
    result = _job("--database-url", url, "--schema", schema, "versions", env=env)
    assert result.exit_code == 0, result.output
    assert f"database: {masked(database_url)} (--database-url), schema {schema}" in result.stderr


def test_the_environment_wins_over_the_embedded_server(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    url = database_url.render_as_string(hide_password=False)
    env = {"RECSYS_DATABASE_URL": url, "RECSYS_HOME": str(tmp_path)}
    result = _job("--schema", schema, "versions", env=env)
    assert result.exit_code == 0, result.output
    assert f"database: {masked(database_url)} (RECSYS_DATABASE_URL), schema" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no embedded server was set up


def test_an_unreachable_choice_is_not_replaced_by_another(tmp_path: Path) -> None:
    """The order picks one database; it is not a list of fallbacks tried in turn."""
    env = {"RECSYS_DATABASE_URL": None, "RECSYS_HOME": str(tmp_path)}
    result = _job("--database-url", UNREACHABLE, "versions", env=env)
    assert result.exit_code == 3
    assert "database: postgresql://nobody@127.0.0.1:1/nowhere (--database-url)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _postmasters(pgdata: Path) -> list[psutil.Process]:
    """Running server processes whose data directory is ``pgdata`` (from its postmaster.pid)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return []
    pid = int(pid_file.read_text().split()[0])
    try:
        process = psutil.Process(pid)
        return [process] if str(pgdata) in " ".join(process.cmdline()) else []
    except psutil.Error:  # a stale file: the process is gone
        return []


@pytest.fixture
def recsys_home(tmp_path: Path) -> Iterator[Path]:
    """An empty RECSYS_HOME; a server left running in it is stopped (fast shutdown) afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    yield home
    for process in _postmasters(home / "pgdata"):
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def _embedded(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed recsys-job with no database URL in its environment, only RECSYS_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED} | {
        "RECSYS_HOME": str(home)
    }
    return subprocess.run(
        [str(console_script()), *args], env=env, capture_output=True, text=True, timeout=600
    )


def _stopped(pgdata: Path, timeout: float = 10.0) -> bool:
    """Whether no server runs on ``pgdata`` (within ``timeout``: a stop may still be finishing)."""
    deadline = time.monotonic() + timeout
    while _postmasters(pgdata):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_demo_without_a_database_url_publishes_in_the_embedded_server(recsys_home: Path) -> None:
    pgdata = recsys_home / "pgdata"
    demo = _embedded(recsys_home, "demo", "--epochs", "1")
    assert demo.returncode == 0, demo.stderr[-3000:]
    (using,) = [line for line in demo.stderr.splitlines() if line.startswith("database: ")]
    assert using.startswith("database: postgresql://postgres@/postgres?host=")  # no ":***@"
    assert using.endswith(f"(embedded PostgreSQL in {recsys_home}), schema recsys")
    assert "published demo" in demo.stdout
    assert (pgdata / "PG_VERSION").is_file()
    assert _stopped(pgdata), "the embedded server outlived the demo"

    listed = _embedded(recsys_home, "versions", "--json")  # starts the server again, and stops it
    assert listed.returncode == 0, listed.stderr[-3000:]
    versions = json.loads(listed.stdout)
    assert [(v["name"], v["status"]) for v in versions] == [("demo", "published")]
    assert {m["users_counted"] for m in versions[0]["metrics"]} == {600}
    assert _stopped(pgdata), "the embedded server outlived `versions`"
