"""``recsys.run(...)`` from Python is ``recsys-job run``: the same settings publish the same version
(stored settings, figures and lists), an ISO 8601 cut-off given with ``Z`` on the command line and
with an offset in Python included; and docs/python.md's example runs as written."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

import recsys
from recsys.errors import InvalidInput
from recsys.run_summary import RunResult
from recsys.storage import schema
from tests.integration._run_data import (
    FAST_OPTIONS,
    cli,
    expect_published,
    populated_schema,
    recommendations,
    version_row,
)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "python.md"
Populated = tuple[sa.Engine, str]


@pytest.fixture(scope="module")
def populated(database_url: URL) -> Iterator[Populated]:
    with populated_schema(database_url) as pair:
        yield pair


def _cut(engine: sa.Engine) -> datetime:
    """A quarter of a second before the rating at 70% of the times (ratings are at whole
    seconds): a cut-off with a fraction of a second, in UTC."""
    with engine.connect() as conn:
        times = sorted(conn.execute(sa.select(schema.ratings.c.rated_at)).scalars())
    return times[round(len(times) * 0.7)].astimezone(UTC) - timedelta(milliseconds=250)


def _evaluation(conn: sa.Connection, version: str) -> list[tuple]:
    """The version's figures but the champion's: the first version published becomes the
    production alias, the champion of the next."""
    table = schema.evaluation_results
    query = sa.select(table.c.model, table.c.metric, table.c.k, table.c.value).where(
        table.c.version == version, table.c.model != "champion"
    )
    return sorted(tuple(row) for row in conn.execute(query))


def test_python_and_the_command_publish_the_same_version(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    cut = _cut(engine)
    zulu = cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    plus_two = cut.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert plus_two.endswith("+02:00") and zulu.endswith("Z")
    options = ("--seed", "4", "--split", "temporal", "--eval-k", "5,10", "--top-k", "7")
    command = cli(
        database_url, name, "--model-version", "cli", *FAST_OPTIONS, *options, "--cutoff", zulu
    )
    assert command.exit_code == 0, command.output

    lines: list[str] = []
    result = recsys.run(
        "py",
        database_url=database_url.render_as_string(hide_password=False),
        schema=name,
        report=lines.append,
        epochs=3,
        dim=16,
        layers=2,
        patience=5,
        seed=4,
        split="temporal",
        eval_k=[5, 10],
        top_k=7,
        cutoff=plus_two,
    )

    expect_published(engine, "py", top_k=7)
    with engine.connect() as conn:
        by_cli, by_python = version_row(conn, "cli"), version_row(conn, "py")
        assert by_python.params == by_cli.params
        assert by_python.params["cutoff"] == cut.isoformat()
        assert _evaluation(conn, "py") == _evaluation(conn, "cli")
        assert recommendations(conn, "py") == recommendations(conn, "cli")
    # The same settings said the same way, and the same summary but for the names and seconds.
    said = re.search(r"^run cli: (.*)$", command.stdout, re.MULTILINE)
    assert said and lines[0] == f"run py: {said[1]}"
    assert result.version == "py"
    assert f"published cli: best epoch {result.best_epoch}\n" in command.stdout
    assert lines[-1] == result.summary() and lines[-1].startswith("published py: best epoch")
    with engine.connect() as conn:
        assert _evaluation_of(result) == _evaluation(conn, "py")


def _evaluation_of(result: RunResult) -> list[tuple]:
    frame = result.evaluation.query("model != 'champion'")[["model", "metric", "k", "value"]]
    return sorted(frame.itertuples(index=False, name=None))


def test_python_refuses_what_the_command_refuses(populated: Populated, database_url: URL) -> None:
    """The rules are the library's: an ignored option and an unreadable value are refused
    before anything is written, in the command's words."""
    engine, name = populated
    url = database_url.render_as_string(hide_password=False)
    with pytest.raises(InvalidInput, match="--cutoff does not apply to --split stratified"):
        recsys.run("refused", database_url=url, schema=name, cutoff="2020-01-02T00:00:00Z")
    with pytest.raises(InvalidInput, match="max-train-time: expected a duration such as 90s"):
        recsys.run("refused", database_url=url, schema=name, max_train_time="ten minutes")
    with pytest.raises(InvalidInput, match="unknown epoch"):
        recsys.run("refused", database_url=url, schema=name, epoch=3)
    with engine.connect() as conn:
        assert version_row(conn, "refused") is None


def _example() -> str:
    """The one fenced Python block of the guide."""
    (block,) = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    return block


def test_the_python_guide_example_runs(
    populated: Populated,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine, name = populated
    monkeypatch.setenv("RECSYS_DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("RECSYS_SCHEMA", name)
    namespace: dict[str, object] = {}
    exec(compile(_example(), str(GUIDE), "exec"), namespace)
    result = namespace["result"]
    expect_published(engine, result.version)
    printed = capsys.readouterr().out
    assert f"{result.version} best epoch {result.best_epoch}" in printed
    assert "gf-cf" in printed and "lightgcn" in printed
