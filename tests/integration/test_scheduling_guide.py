"""The scheduling guide (``docs/nightly.md``), run as far as it can be here.

The crontab line runs as cron would run it (``/bin/sh -c`` in the home directory, its ``\\%``
unescaped, its environment lines set) against the test database; the Airflow task's command runs
under bash against a stand-in ``recsys-job`` that exits with each code of ``recsys/errors.py``
(Airflow itself is not installed: the DAG file is parsed, not imported); the dbt ``sources.yml``
parses and names views and columns that exist after migration.
"""

import ast
import os
import re
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL

from recsys import errors
from recsys.storage.bulk import schema_of
from recsys.storage.database import DEFAULT_SCHEMA
from recsys_jobs.run import run as run_command
from tests.integration._run_data import FAST_OPTIONS, expect_published, populate, version_row

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "nightly.md"
SECTION = "## Scheduling a nightly run"


def _block(language: str) -> str:
    """The one fenced ``language`` block of the scheduling section."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    (block,) = re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    return block


# --- cron ----------------------------------------------------------------------------------

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def _crontab() -> tuple[dict[str, str], list[str], str]:
    """The block's environment lines, the five schedule fields and the command."""
    environment, jobs = {}, []
    for line in _block("crontab").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            name, value = line.split("=", 1)
            environment[name] = value
        else:
            jobs.append(line)
    (job,) = jobs
    fields = job.split(None, 5)
    return environment, fields[:5], fields[5]


def _as_cron_runs(command: str) -> str:
    """Cron ends the command at an unescaped ``%`` (the rest is stdin) and unescapes ``\\%``."""
    assert re.search(r"(?<!\\)%", command) is None, "an unescaped % would cut the command"
    return command.replace("\\%", "%")


def test_the_crontab_line_publishes_tonights_version(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    environment, schedule, command = _crontab()
    assert schedule == ["30", "2", "*", "*", "*"]
    assert all(_CRON_FIELD.match(field) for field in schedule)
    assert {"SHELL", "PATH", "RECSYS_DATABASE_URL"} <= environment.keys()
    populate(engine)
    options = dict(zip(FAST_OPTIONS[::2], FAST_OPTIONS[1::2], strict=True))
    config = tmp_path / "recsys" / "nightly.toml"
    config.parent.mkdir()
    config.write_text("".join(f"{name[2:]} = {value}\n" for name, value in options.items()))

    env = {
        **os.environ,
        **environment,
        # Where this site has the job and its database: the test's own, for the crontab's.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RECSYS_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "RECSYS_SCHEMA": schema,
        "HOME": str(tmp_path),
    }
    before = datetime.now(UTC).strftime("%Y%m%d")
    finished = subprocess.run(
        [environment["SHELL"], "-c", _as_cron_runs(command)],
        cwd=tmp_path,  # cron starts in the home directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    after = datetime.now(UTC).strftime("%Y%m%d")
    log = (tmp_path / "recsys" / "nightly.log").read_text(encoding="utf-8")
    assert finished.returncode == 0, log
    assert finished.stdout == finished.stderr == ""  # everything went to the log
    published = {f"nightly-{day}" for day in (before, after)}
    with engine.connect() as conn:
        names = set(
            conn.execute(sa.text(f'SELECT name FROM "{schema_of(conn)}".model_versions')).scalars()
        )
    (version,) = names & published
    expect_published(engine, version)
    assert f"published {version}" in log and "pruned nothing (--keep 30)" in log


def test_the_example_config_names_run_options() -> None:
    settings = tomllib.loads(_block("toml"))
    known = {param.name for param in run_command.params}
    assert settings and {key.replace("-", "_") for key in settings} <= known


# --- Airflow -------------------------------------------------------------------------------


def _dag() -> tuple[str, dict[str, object]]:
    """The DAG file's command (NIGHTLY) and the BashOperator's keyword arguments."""
    tree = ast.parse(_block("python"))
    (command,) = (
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["NIGHTLY"]
    )
    (operator,) = (
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator"
    )
    keywords = {
        k.arg: k.value.id if isinstance(k.value, ast.Name) else ast.literal_eval(k.value)
        for k in operator.keywords
    }
    return command, keywords


#: Each error class of recsys/errors.py (and success) → what the task must end with: its exit
#: status (99: skipped) after how many attempts. A new class must be added here, and to the DAG.
AIRFLOW = {
    None: (0, 1),
    errors.RecsysError: (1, 1),
    errors.InvalidInput: (2, 1),
    errors.DatabaseUnavailable: (3, 3),
    errors.SchemaNotAtHead: (4, 1),
    errors.VersionConflict: (99, 1),
    errors.ConnectionLost: (6, 3),
    errors.DatabaseTimeout: (7, 3),
}


def _stand_ins(folder: Path, codes: list[int]) -> None:
    """``recsys-job`` that logs its arguments and exits with the next of ``codes``; ``sleep``
    that logs its argument and returns at once."""
    (folder / "codes").write_text("".join(f"{code}\n" for code in codes))
    scripts = {
        "recsys-job": 'echo "$*" >>"$STAND_IN/calls"\n'
        'code=$(head -n 1 "$STAND_IN/codes"); sed -i 1d "$STAND_IN/codes"; exit "$code"\n',
        "sleep": 'echo "$1" >>"$STAND_IN/sleeps"\n',
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _task(tmp_path: Path, codes: list[int]) -> tuple[int, list[str], list[str]]:
    """Run the task's command (rendered for 2 January 2026) over ``codes``; its exit status,
    the stand-in's calls and the sleeps."""
    command, _ = _dag()
    rendered = command.replace("{{ ds_nodash }}", "20260102")
    assert "{{" not in rendered and "{%" not in rendered
    _stand_ins(tmp_path, codes)
    finished = subprocess.run(
        ["bash", "-c", rendered],
        env={**os.environ, "STAND_IN": str(tmp_path), "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = (tmp_path / "calls").read_text().splitlines()
    sleeps_file = tmp_path / "sleeps"
    sleeps = sleeps_file.read_text().splitlines() if sleeps_file.exists() else []
    return finished.returncode, calls, sleeps


def test_the_airflow_task_maps_every_exit_code() -> None:
    defined = {cls for cls in vars(errors).values() if isinstance(cls, type)}
    assert {c for c in AIRFLOW if c} == {c for c in defined if issubclass(c, errors.RecsysError)}
    _, keywords = _dag()
    assert keywords["bash_command"] == "NIGHTLY"
    assert (keywords["retries"], keywords["skip_on_exit_code"]) == (0, 99)


@pytest.mark.parametrize("error", list(AIRFLOW), ids=lambda e: e.__name__ if e else "success")
def test_the_airflow_task_retries_only_transient_failures(
    tmp_path: Path, error: type[errors.RecsysError] | None
) -> None:
    code = error.exit_code if error else 0
    status, attempts = AIRFLOW[error]
    found, calls, sleeps = _task(tmp_path, [code] * attempts)
    assert (found, len(calls)) == (status, attempts)
    assert calls[0] == "run --model-version nightly-20260102 --keep 30"
    assert sleeps == ["600"] * (attempts - 1)


def test_the_airflow_task_skips_a_version_published_but_not_promoted(tmp_path: Path) -> None:
    status, calls, sleeps = _task(tmp_path, [errors.PUBLISHED_NOT_PROMOTED])
    assert (status, len(calls), sleeps) == (99, 1, [])


def test_the_airflow_task_succeeds_once_a_retry_publishes(tmp_path: Path) -> None:
    codes = [errors.DatabaseUnavailable.exit_code, errors.ConnectionLost.exit_code, 0]
    status, calls, sleeps = _task(tmp_path, codes)
    assert (status, len(calls), sleeps) == (0, 3, ["600", "600"])


# --- dbt -----------------------------------------------------------------------------------


def test_the_dbt_sources_name_views_and_columns_that_exist(engine: sa.Engine) -> None:
    (source,) = yaml.safe_load(_block("yaml"))["sources"]
    assert source["schema"] == DEFAULT_SCHEMA
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        views = set(inspector.get_view_names(schema=schema_of(conn)))
        named = [table["name"] for table in source["tables"]]
        assert {"production_recommendations", "production_similar_items"} <= set(named)
        assert set(named) <= views
        for table in source["tables"]:
            columns = {c["name"] for c in inspector.get_columns(table["name"], schema_of(conn))}
            listed = {c["name"] for c in table.get("columns", [])}
            assert listed <= columns, table["name"]
            if "loaded_at_field" in table:
                assert table["loaded_at_field"] in columns


# --- the nightly script: erasures, the dbt model's increment, the run ------------------------


def _nightly_source(engine: sa.Engine) -> int:
    """``analytics``: ``orders`` holding the synthetic ratings, ``erasure_requests`` naming one of
    their users, and the dbt model ``recsys_interactions`` leaving that user out. recsys keeps
    only that user's ratings, so the night has one user to erase and the rest to ingest."""
    populate(engine)
    with engine.begin() as conn:
        ratings = f'"{schema_of(conn)}".ratings'
        erased = conn.execute(sa.text(f"SELECT min(user_id) FROM {ratings}")).scalar_one()
        for statement in (
            "CREATE SCHEMA analytics",
            "CREATE TABLE analytics.orders AS"
            f" SELECT user_id, movie_id AS item_id, rating, rated_at FROM {ratings}",
            "CREATE TABLE analytics.erasure_requests"
            " (user_id bigint, requested_at timestamptz DEFAULT now())",
            "CREATE VIEW analytics.recsys_interactions AS SELECT * FROM analytics.orders"
            " WHERE user_id NOT IN (SELECT user_id FROM analytics.erasure_requests)",
        ):
            conn.execute(sa.text(statement))
        conn.execute(
            sa.text("INSERT INTO analytics.erasure_requests (user_id) VALUES (:u)"), {"u": erased}
        )
        conn.execute(sa.text(f"DELETE FROM {ratings} WHERE user_id <> :u"), {"u": erased})
    return erased


def test_the_nightly_script_erases_ingests_the_increment_and_publishes(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path
) -> None:
    script = _block("sh")
    erased = _nightly_source(engine)
    try:
        config = tmp_path / "recsys" / "nightly.toml"
        config.parent.mkdir()
        options = dict(zip(FAST_OPTIONS[::2], FAST_OPTIONS[1::2], strict=True))
        config.write_text("".join(f"{name[2:]} = {value}\n" for name, value in options.items()))
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RECSYS_DATABASE_URL": database_url.render_as_string(hide_password=False),
            "RECSYS_SCHEMA": schema,
            "HOME": str(tmp_path),
        }

        def night(text: str) -> str:
            done = subprocess.run(
                ["sh", "-c", text], env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        before = datetime.now(UTC).strftime("%Y%m%d")
        out = night(script)
        with engine.connect() as conn:
            orders = conn.execute(
                sa.text("SELECT count(*) FROM analytics.recsys_interactions")
            ).scalar_one()
            held = conn.execute(
                sa.text(
                    f'SELECT (SELECT count(*) FROM "{schema}".ratings WHERE user_id = :u)'
                    f' + (SELECT count(*) FROM "{schema}".users WHERE user_id = :u)'
                    f' + (SELECT count(*) FROM "{schema}".recommendations WHERE user_id = :u)'
                ),
                {"u": erased},
            ).scalar_one()
            audits = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".erasures')).scalar()
        assert "forgot 1 user(s)" in out
        assert f"ratings: {orders:,} inserted, 0 updated, 0 unchanged" in out
        assert held == 0 and audits == 1
        versions = {f"nightly-{day}" for day in (before, datetime.now(UTC).strftime("%Y%m%d"))}
        (version,) = [v for v in versions if f"published {v}" in out]
        with engine.connect() as conn:
            assert version_row(conn, version).status == "published"

        # The next night, before any new order: the ingest reads nothing, the request adds no row.
        lines = [line for line in script.splitlines() if line.startswith("recsys-job")]
        again = night("\n".join(lines[:2]))
        assert "ratings: 0 inserted, 0 updated, 0 unchanged" in again
        with engine.connect() as conn:
            assert conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".erasures')).scalar() == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA analytics CASCADE"))
