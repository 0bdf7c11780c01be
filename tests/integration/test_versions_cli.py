"""``versions``, ``show``, ``compare``, ``promote``, ``prune`` and ``recommend``, each in its human
and its ``--json`` form."""

import json
from collections.abc import Iterator
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.errors import InvalidInput
from recsys.evaluation.metrics import METRICS
from recsys.storage import schema as tables
from recsys.storage import sqlfiles
from recsys.storage.bulk import schema_of
from recsys.versions import aliases, registry
from tests.integration._published_versions import (
    TOP_K,
    V1,
    V2,
    cli,
    overlap,
    publish_outputs,
    two_versions,
)
from tests.integration._run_data import N_USERS, UNRATED_USERS

USER = 3


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    with two_versions(database_url) as pair:
        yield pair


@pytest.fixture
def job(published: tuple[sa.Engine, str], database_url: URL) -> Iterator:
    """Run the CLI on the shared schema; aliases a test sets are removed afterwards."""
    engine, name = published
    yield lambda *args: cli(database_url, name, *args)
    with engine.begin() as conn:
        conn.execute(sa.delete(tables.version_aliases))
        aliases.pin_production(conn)  # views follow a hand edit once re-pinned


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def test_versions_table(job) -> None:
    lines = _ok(job("versions")).splitlines()
    assert lines[0].split()[:5] == ["version", "status", "created", "duration", "k"]
    assert lines[1].split()[:2] == [V1, "published"]
    assert lines[2].split()[:2] == [V2, "published"]
    assert lines[2].endswith("production (latest published)")


def test_versions_json(job) -> None:
    found = _json(job("versions", "--json"))
    assert [(v["name"], v["status"]) for v in found] == [(V1, "published"), (V2, "published")]
    for v in found:
        assert v["seconds"] > 0
        assert [(m["metric"], m["k"]) for m in v["metrics"]] == [
            ("precision", 10), ("recall", 10), ("ndcg", 10), ("map", 10)
        ]  # fmt: skip
    assert found[0]["aliases"] == []
    assert found[1]["aliases"] == [{"alias": "production", "resolved_by": "latest published"}]


def test_show_text(job) -> None:
    text = _ok(job("show", V2))
    assert text.startswith(f"version {V2}: published; alias production (latest published)")
    for section in ("settings:", "data:", "seconds per phase:", "metrics (users counted:"):
        assert section in text
    assert "code version: " in text and "3 epochs" in text


def test_show_json(job) -> None:
    shown = _json(job("show", V2, "--json"))
    assert shown["params"]["seed"] == 2 and shown["params"]["test_ratio"] == 0.2
    assert shown["data_stats"]["users"] == N_USERS
    assert {"read", "train", "evaluate"} <= shown["phase_seconds"].keys()
    assert shown["code_version"] and shown["epochs"] == 3
    # The model's and the gf-cf baseline's figures, every metric at k = 10 and 20.
    assert len(shown["metrics"]) == 2 * len(METRICS) * 2
    assert {m["model"] for m in shown["metrics"]} == {"lightgcn", "gf-cf"}
    assert all(m["baseline_value"] is not None for m in shown["metrics"])
    for m in shown["metrics"]:
        assert m["lift_over_strongest"] == pytest.approx(m["value"] - m["strongest_baseline_value"])


def test_show_unknown_version(job) -> None:
    result = job("show", "nope")
    assert result.exit_code == 1
    assert f"no version 'nope' (known: {V1}, {V2})" in result.stderr


def test_compare_json(job, published: tuple[sa.Engine, str]) -> None:
    engine, _name = published
    compared = _json(job("compare", V1, V2, "--json"))
    shown = {name: _json(job("show", name, "--json"))["metrics"] for name in (V1, V2)}
    model = {
        name: {(m["metric"], m["k"]): m for m in shown[name] if m["model"] == "lightgcn"}
        for name in shown
    }
    assert len(compared["metrics"]) == len(METRICS) * 2
    for d in compared["metrics"]:
        a, b = model[V1][d["metric"], d["k"]], model[V2][d["metric"], d["k"]]
        assert (d["value_a"], d["value_b"]) == (a["value"], b["value"])
        assert d["delta"] == pytest.approx(d["value_b"] - d["value_a"])
        over = (d["over_strongest_a"], d["over_strongest_b"])
        assert over == (a["lift_over_strongest"], b["lift_over_strongest"])
    recomputed = overlap(engine, V1, V2, 10)
    assert compared["overlap"] == {
        "k": 10,
        "users": N_USERS,
        "mean_jaccard": pytest.approx(recomputed.mean_jaccard, rel=1e-12),
        "identical_share": pytest.approx(recomputed.identical_share, rel=1e-12),
    }
    assert recomputed.users == N_USERS and 0 < recomputed.mean_jaccard < 1
    assert compared["params"] == {"seed": [1, 2], "test_ratio": [0.25, 0.2], "val_ratio": [0, 0.1]}


def test_compare_text_and_a_version_with_itself(job, published: tuple[sa.Engine, str]) -> None:
    text = _ok(job("compare", V1, V2, "--k", "5"))
    assert text.startswith(f"{V1} → {V2}\nmetric")
    at_5 = overlap(published[0], V1, V2, 5)
    assert (
        f"recommendation overlap @5: mean Jaccard {at_5.mean_jaccard:.4f} over {at_5.users} users"
        in text
    )
    assert "settings that differ:" in text and "test_ratio" in text
    itself = _json(job("compare", V1, V1, "--json"))
    assert itself["overlap"]["mean_jaccard"] == 1.0
    assert all(d["delta"] == 0 for d in itself["metrics"]) and itself["params"] == {}


def test_compare_refuses_an_unknown_version(job) -> None:
    result = job("compare", V1, "v9")
    assert result.exit_code == 1 and "no version 'v9'" in result.stderr


def test_recommend_defaults_to_production(job) -> None:
    lines = _ok(job("recommend", "--user", str(USER))).splitlines()
    assert lines[0] == f"user {USER}, version {V2} (alias production not set: latest published)"
    assert lines[1].split() == ["rank", "title", "genres", "score", "source"]
    assert len(lines) == 2 + TOP_K

    found = _json(job("recommend", "--user", str(USER), "--json"))
    assert (found["version"], found["alias"], found["resolved_by"]) == (
        V2, "production", "latest published"
    )  # fmt: skip
    assert [r["rank"] for r in found["items"]] == list(range(1, TOP_K + 1))
    assert all(r["title"] and r["source"] == "model" for r in found["items"])


def test_recommend_a_version_and_a_fallback_user(job) -> None:
    found = _json(job("recommend", "--user", str(UNRATED_USERS[0]), "--version", V1, "--json"))
    assert (found["version"], found["alias"]) == (V1, None)
    assert {r["source"] for r in found["items"]} == {"fallback"}
    assert f"version {V1}\n" in _ok(job("recommend", "--user", str(USER), "--version", V1))


def test_recommend_errors(job) -> None:
    unknown = job("recommend", "--user", "123456")
    assert unknown.exit_code == 1
    assert f"user 123456 has no recommendations in version '{V2}'" in unknown.stderr
    unset = job("recommend", "--user", str(USER), "--alias", "staging")
    assert unset.exit_code == 1 and "alias 'staging' is not set" in unset.stderr
    both = job("recommend", "--user", str(USER), "--version", V1, "--alias", "production")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_promote_moves_the_alias_and_recommend_follows(job) -> None:
    assert _ok(job("promote", V1)).startswith(f"production: (not set) → {V1} at ")
    moved = _json(job("promote", V2, "--alias", "production", "--json"))
    assert (moved["alias"], moved["previous"], moved["version"], moved["changed"]) == (
        "production", V1, V2, True
    )  # fmt: skip
    again = _json(job("promote", V2, "--json"))
    assert again["changed"] is False and again["at"] == moved["at"]
    assert _ok(job("promote", V2)).startswith(f"production already points to {V2} (since ")

    assert _ok(job("promote", V1, "--alias", "staging")).startswith(f"staging: (not set) → {V1}")
    found = _json(job("recommend", "--user", str(USER), "--alias", "staging", "--json"))
    assert (found["version"], found["resolved_by"]) == (V1, "alias")
    listed = {v["name"]: v["aliases"] for v in _json(job("versions", "--json"))}
    assert listed == {
        V1: [{"alias": "staging", "resolved_by": "alias"}],
        V2: [{"alias": "production", "resolved_by": "alias"}],
    }


def test_promote_refuses_unknown_versions_and_bad_alias_names(job) -> None:
    unknown = job("promote", "v9")
    assert unknown.exit_code == 1 and "no version 'v9'" in unknown.stderr
    bad = job("promote", V1, "--alias", "no spaces")
    assert bad.exit_code == InvalidInput.exit_code
    assert "alias 'no spaces' is not allowed" in bad.stderr


# --- prune: its own schema, versions published without training ------------------------------


@pytest.fixture
def lifecycle(engine: sa.Engine, database_url: URL, schema: str) -> Iterator:
    """Published a..d (oldest first; production → b), failed f, stale s, a stray output table."""
    runs = {name: publish_outputs(engine, name) for name in ("a", "b", "c", "d")}
    for name, fail in (("f", True), ("s", False)):
        claim = registry.acquire(engine, name, replace=False)
        registry.start(engine, claim, {})
        if fail:
            registry.mark_failed(engine, claim, "RuntimeError: boom")
        claim.release()  # s: running, but nobody holds its lock any more
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'CREATE TABLE "{schema}".recommendations_r999 (LIKE "{schema}".recommendations)'
            )
        )
    run = partial(cli, database_url, schema)
    assert run("promote", "b").exit_code == 0
    yield run, runs


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=schema_of(conn)))


def test_prune_dry_run_lists_and_changes_nothing(lifecycle, engine: sa.Engine) -> None:
    run, _runs = lifecycle
    statuses = {v["name"]: v["status"] for v in _json(run("versions", "--json"))}
    assert statuses == {"a": "published", "b": "published", "c": "published",
                        "d": "published", "f": "failed", "s": "stale"}  # fmt: skip
    assert " stale " in _ok(run("versions"))
    before = _tables(engine)

    planned = _json(run("prune", "--keep", "1", "--dry-run", "--json"))
    assert planned["dry_run"] is True
    assert {d["version"]: d["reason"] for d in planned["remove"]} == {
        "c": "older than the newest 1 published",
        "a": "older than the newest 1 published",
        "f": "failed",
        "s": "its run died (stale)",
    }
    assert {d["version"]: d["reason"] for d in planned["keep"]} == {
        "d": "among the newest 1 published",
        "b": "alias production",
    }
    assert planned["stray_tables"] == ["recommendations_r999"]

    text = _ok(run("prune", "--keep", "1", "--dry-run"))
    assert text.startswith("would remove:\nversion")
    assert "would drop stray tables: recommendations_r999" in text and "\nkept:\n" in text
    assert _tables(engine) == before
    assert len(_json(run("versions", "--json"))) == 6


def test_prune_drops_partitions_and_registry_rows(lifecycle, engine: sa.Engine) -> None:
    run, runs = lifecycle
    done = _json(run("prune", "--keep", "1", "--json"))
    assert sorted(d["version"] for d in done["removed"]) == ["a", "c", "f", "s"]
    assert done["skipped"] == [] and done["dropped_tables"] == ["recommendations_r999"]

    existing = _tables(engine)
    for name, run_id in runs.items():
        present = {t.name for t in tables.OUTPUT_TABLES if f"{t.name}_r{run_id}" in existing}
        assert present == ({t.name for t in tables.OUTPUT_TABLES} if name in ("b", "d") else set())
    assert "recommendations_r999" not in existing
    with engine.connect() as conn:
        versions = conn.execute(sa.select(tables.model_versions.c.name)).scalars()
        assert sorted(versions) == ["b", "d"]
        recs = tables.recommendations
        assert sorted(conn.execute(sa.select(recs.c.version).distinct()).scalars()) == ["b", "d"]
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tables.version_runs)).scalar() == 2
        )

    assert _ok(run("prune", "--keep", "1")).startswith("nothing removed\nkept:\n")
    assert _ok(run("promote", "d")).startswith("production: b → d")
    second = _ok(run("prune", "--keep", "1"))
    assert second.startswith("removed:\n") and "\nb " in second
    assert [v["name"] for v in _json(run("versions", "--json"))] == ["d"]
    with engine.connect() as conn:
        sqlfiles.use_schema(conn)
        history = conn.execute(
            sa.text("SELECT version, version_status FROM alias_history ORDER BY valid_from")
        ).all()
    assert [tuple(h) for h in history] == [("b", "pruned"), ("d", "published")]


def test_promote_refuses_failed_and_stale_versions(lifecycle) -> None:
    run, _runs = lifecycle
    for name, status in (("f", "failed"), ("s", "stale")):
        refused = run("promote", name)
        assert refused.exit_code == 1
        assert f"version {name!r} is {status}, not published" in refused.stderr
