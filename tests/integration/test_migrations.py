"""Alembic migrations against a real PostgreSQL: round trip, no drift, the at-head guard."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from recsys.errors import SchemaNotAtHead
from recsys.storage import migrate
from recsys.storage.schema import metadata
from recsys_jobs.cli import main


def _tables(engine: sa.Engine, schema: str) -> set[str]:
    return set(sa.inspect(engine).get_table_names(schema=schema))


def test_upgrade_downgrade_upgrade_round_trip(bare_engine: sa.Engine, schema: str) -> None:
    expected = {t.name for t in metadata.sorted_tables} | {migrate.VERSION_TABLE}

    migrate.upgrade(bare_engine, schema)
    assert _tables(bare_engine, schema) == expected
    assert migrate.current_revision(bare_engine, schema) == migrate.head_revision()

    migrate.downgrade(bare_engine, schema, "base")
    assert _tables(bare_engine, schema) == {migrate.VERSION_TABLE}
    assert migrate.current_revision(bare_engine, schema) is None

    migrate.upgrade(bare_engine, schema)
    assert _tables(bare_engine, schema) == expected


def test_tables_match_migrated_ddl(engine: sa.Engine, schema: str) -> None:
    """The SQLAlchemy Table objects and the migrations describe the same schema."""
    retargeted = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(retargeted, schema=schema)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name == schema,
                "version_table_schema": schema,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        differences = compare_metadata(context, retargeted)
    assert differences == []


def test_output_tables_are_partitioned_by_version(engine: sa.Engine, schema: str) -> None:
    with engine.connect() as conn:
        partitioned = conn.execute(
            sa.text(
                "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND c.relkind = 'p'"
            ),
            {"schema": schema},
        ).all()
    assert dict(partitioned) == {
        name: "LIST (version)"
        for name in (
            "user_embeddings",
            "item_embeddings",
            "similar_items",
            "recommendations",
            "evaluation_results",
            "training_history",
        )
    }


def test_require_head_refuses_unmigrated_schema(bare_engine: sa.Engine, schema: str) -> None:
    try:
        migrate.require_head(bare_engine, schema)
    except SchemaNotAtHead as exc:
        assert "recsys-job db upgrade" in str(exc)
    else:
        raise AssertionError("an unmigrated schema was accepted")


def test_commands_refuse_schema_not_at_head(bare_engine, database_url, schema, tmp_path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user_id,item_id,rating\n1,10,4\n")
    args = [
        "--database-url",
        database_url.render_as_string(hide_password=False),
        "--schema",
        schema,
    ]
    runner = CliRunner()

    result = runner.invoke(main, [*args, "ingest", "csv", "--ratings", str(ratings)])
    assert result.exit_code == SchemaNotAtHead.exit_code
    assert "recsys-job db upgrade" in result.stderr
    assert not _tables(bare_engine, schema) - {migrate.VERSION_TABLE}

    upgraded = runner.invoke(main, [*args, "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(main, [*args, "db", "current"])
    assert f"{migrate.head_revision()} (at head)" in current.stdout

    with bare_engine.begin() as conn:
        conn.execute(
            sa.text(f'UPDATE "{schema}".alembic_version SET version_num = :v'), {"v": "0000"}
        )
    stale = runner.invoke(main, [*args, "ingest", "csv", "--ratings", str(ratings)])
    assert stale.exit_code == SchemaNotAtHead.exit_code
    assert "at revision 0000" in stale.stderr
