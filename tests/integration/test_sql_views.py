"""The views in ``sql/views/`` against a schema with two published versions of real runs."""

import json
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.evaluation.metrics import METRICS
from recsys.storage import migrate, schema, sqlfiles, views
from recsys.storage.bulk import schema_of
from recsys.versions import aliases
from tests.integration._published_versions import TOP_K, V1, V2, cli, publish_outputs, two_versions
from tests.integration._run_data import N_USERS, UNRATED_USERS


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[sa.Engine]:
    with two_versions(database_url) as (engine, _name):
        yield engine


@pytest.fixture
def db(published: sa.Engine) -> Iterator[sa.Engine]:
    """The shared schema; aliases a test sets are removed afterwards."""
    yield published
    with published.begin() as conn:
        conn.execute(sa.delete(schema.version_aliases))
        aliases.pin_production(conn)  # views follow a hand edit once re-pinned


def _rows(conn: sa.Connection, query: str, **params: object) -> list[sa.Row]:
    sqlfiles.use_schema(conn)
    return conn.execute(sa.text(query), params).all()


def test_migration_creates_every_view_file_in_the_schema(db: sa.Engine) -> None:
    with db.connect() as conn:
        created = sa.inspect(conn).get_view_names(schema=schema_of(conn))
    assert sorted(created) == sqlfiles.names("views")


def test_views_read_only_tables_of_their_own_schema(db: sa.Engine) -> None:
    """Names were resolved in the configured schema when the views were created."""
    with db.connect() as conn:
        namespaces = conn.execute(
            sa.text(
                "SELECT DISTINCT rn.nspname FROM pg_rewrite r"
                " JOIN pg_class v ON v.oid = r.ev_class"
                " JOIN pg_namespace vn ON vn.oid = v.relnamespace"
                " JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass"
                " JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid"
                " JOIN pg_namespace rn ON rn.oid = t.relnamespace"
                " WHERE vn.nspname = :schema AND v.relkind = 'v'"
            ),
            {"schema": schema_of(conn)},
        ).scalars()
        assert set(namespaces) == {schema_of(conn)}


def test_declared_views_match_the_database(db: sa.Engine) -> None:
    with db.connect() as conn:
        inspector = sa.inspect(conn)
        for view in views.metadata.tables.values():
            found = [c["name"] for c in inspector.get_columns(view.name, schema=schema_of(conn))]
            assert found == [c.name for c in view.columns], view.name


def test_downgrade_drops_the_views_and_upgrade_restores_them(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        name = schema_of(conn)
    migrate.downgrade(engine, name, "0001")
    assert sa.inspect(engine).get_view_names(schema=name) == []
    migrate.upgrade(engine, name)
    assert sorted(sa.inspect(engine).get_view_names(schema=name)) == sqlfiles.names("views")


def test_published_recommendations_have_titles_and_fallbacks(db: sa.Engine) -> None:
    with db.connect() as conn:
        counts = _rows(
            conn,
            "SELECT version, count(*), count(title), count(DISTINCT user_id)"
            " FROM published_recommendations GROUP BY version ORDER BY version",
        )
        fallback = _rows(
            conn,
            "SELECT DISTINCT source FROM published_recommendations WHERE user_id = ANY(:users)",
            users=list(UNRATED_USERS),
        )
    assert [tuple(r) for r in counts] == [
        (version, TOP_K * N_USERS, TOP_K * N_USERS, N_USERS) for version in (V1, V2)
    ]
    assert [r.source for r in fallback] == ["fallback"]


def test_views_never_show_an_unpublished_version(db: sa.Engine) -> None:
    with db.connect() as conn:
        conn.execute(
            sa.update(schema.model_versions)
            .where(schema.model_versions.c.name == V2)
            .values(status="failed")
        )
        for view in ("published_recommendations", "evaluation_vs_baseline", "current_aliases"):
            assert {r.version for r in _rows(conn, f"SELECT DISTINCT version FROM {view}")} == {
                V1
            }, view
        served = _rows(conn, "SELECT DISTINCT version FROM production_recommendations")
        assert [r.version for r in served] == [V1]
        conn.rollback()


def test_production_is_the_latest_published_until_an_alias_is_set(db: sa.Engine) -> None:
    with db.connect() as conn:
        assert [
            tuple(r) for r in _rows(conn, "SELECT alias, version, resolved_by FROM current_aliases")
        ] == [("production", V2, "latest published")]
        assert _served(conn) == {V2}

    aliases.promote(db, V1)
    aliases.promote(db, V2, "staging")
    with db.connect() as conn:
        assert _served(conn) == {V1}
        by_alias = _rows(
            conn,
            "SELECT alias, array_agg(DISTINCT version) AS versions, count(*) AS n"
            " FROM alias_recommendations GROUP BY alias ORDER BY alias",
        )
        assert [tuple(r) for r in by_alias] == [
            ("production", [V1], TOP_K * N_USERS),
            ("staging", [V2], TOP_K * N_USERS),
        ]


def test_alias_history_records_each_move(db: sa.Engine) -> None:
    for version in (V1, V2, V1):
        aliases.promote(db, version)
    with db.connect() as conn:
        history = _rows(
            conn,
            "SELECT * FROM alias_history WHERE alias = 'production' ORDER BY valid_from",
        )
    assert [(h.previous_version, h.version) for h in history] == [(None, V1), (V1, V2), (V2, V1)]
    assert [h.is_current for h in history] == [False, False, True]
    assert history[0].valid_to == history[1].valid_from
    assert history[1].valid_to == history[2].valid_from
    assert history[2].valid_to is None
    assert {h.version_status for h in history} == {"published"}


def test_evaluation_sits_beside_the_baseline_with_the_lift(db: sa.Engine) -> None:
    with db.connect() as conn:
        rows = _rows(conn, "SELECT * FROM evaluation_vs_baseline ORDER BY version, k, metric")
        stored = {
            (r.version, r.model, r.metric, r.k): r.value
            for r in conn.execute(sa.select(schema.evaluation_results))
        }
    # Two versions, the model and the gf-cf baseline, every metric at k = 10 and 20.
    assert len(rows) == 2 * 2 * len(METRICS) * 2
    for r in rows:
        assert r.model in ("lightgcn", "gf-cf")
        assert r.value == stored[r.version, r.model, r.metric, r.k]
        assert r.baseline_value == stored[r.version, "popularity", r.metric, r.k]
        assert r.lift == pytest.approx(r.value - r.baseline_value)
        assert r.relative_lift == pytest.approx(r.value / r.baseline_value - 1)
        assert r.users_counted > 0
        # The strongest baseline of the same figure, the row's own model left out.
        others = {
            name: stored[r.version, name, r.metric, r.k]
            for name in ("popularity", "gf-cf")
            if name != r.model
        }
        best = max(others.values())
        assert r.strongest_baseline_value == best
        assert others[r.strongest_baseline] == best
        assert r.lift_over_strongest == pytest.approx(r.value - best)
        relative = r.value / best - 1 if best else None
        assert r.relative_lift_over_strongest == pytest.approx(relative)


def _served(conn: sa.Connection) -> set[str]:
    return {
        r.version for r in _rows(conn, "SELECT DISTINCT version FROM production_recommendations")
    }


def test_relative_lift_is_null_where_the_baseline_scored_zero(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """``NULLIF`` in the view: a zero baseline gives no relative lift instead of an error that
    would break every query of the view, and ``show`` prints it as missing."""
    publish_outputs(engine, "zero", baseline_ndcg=0.0)
    publish_outputs(engine, "half", baseline_ndcg=0.25)
    with engine.connect() as conn:
        rows = _rows(conn, "SELECT * FROM evaluation_vs_baseline ORDER BY version")
    assert [(r.version, r.value, r.baseline_value) for r in rows] == [
        ("half", 0.2, 0.25),
        ("zero", 0.2, 0.0),
    ]
    half, zero = rows
    assert half.relative_lift == pytest.approx(0.2 / 0.25 - 1)
    assert zero.relative_lift is None and zero.lift == pytest.approx(0.2)
    shown = cli(database_url, schema, "show", "zero", "--json")
    assert shown.exit_code == 0, shown.output
    (metric,) = json.loads(shown.stdout)["metrics"]
    assert (metric["baseline_value"], metric["relative_lift"]) == (0.0, None)


def _planned_partitions(conn: sa.Connection, view: str) -> set[str]:
    """The output partitions PostgreSQL plans for one user's (one movie's) rows of ``view``."""
    key = "user_id" if view == "production_recommendations" else "movie_id"
    plan = _rows(conn, f"EXPLAIN (COSTS OFF) SELECT * FROM {view} WHERE {key} = 3")
    return set(re.findall(r"\b(\w+_r\d+)\b", "\n".join(r[0] for r in plan)))


@pytest.mark.parametrize(
    "view, output",
    [
        ("production_recommendations", "recommendations"),
        ("production_similar_items", "similar_items"),
    ],
)
def test_production_views_plan_only_the_promoted_versions_partition(
    db: sa.Engine, view: str, output: str
) -> None:
    """Promoted, ``production`` is named as a constant in the views, so the planner keeps that
    version's partition alone; unset, the version is found while the query runs and every
    version's partition is planned (what made them slow with hundreds of versions)."""
    with db.connect() as conn:
        runs = dict(
            conn.execute(
                sa.select(schema.model_versions.c.name, schema.model_versions.c.run_id)
            ).all()
        )
        assert _planned_partitions(conn, view) == {f"{output}_r{runs[v]}" for v in (V1, V2)}
    aliases.promote(db, V1)
    with db.connect() as conn:
        assert _planned_partitions(conn, view) == {f"{output}_r{runs[V1]}"}
        assert {r.version for r in _rows(conn, f"SELECT DISTINCT version FROM {view}")} == {V1}


def test_a_hand_edit_not_pinned_shows_nothing_rather_than_another_version(db: sa.Engine) -> None:
    aliases.promote(db, V1)
    with db.connect() as conn:
        conn.execute(sa.delete(schema.version_aliases))  # production: the latest published now
        assert _served(conn) == set()  # pinned to V1, which production no longer means
        aliases.pin_production(conn)
        assert _served(conn) == {V2}
        conn.rollback()
    with db.connect() as conn:
        assert _served(conn) == {V1}
