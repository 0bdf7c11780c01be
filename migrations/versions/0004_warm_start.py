"""warm start and promotion gate: layer-0 rows beside the embeddings, a note on alias moves

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01

``layer0`` on the embedding tables holds each version's trainable state, so a later run can
start from it (``run --warm-start``); versions published before have NULL there. ``note`` on
``version_aliases`` says why a run's ``--if-better`` gate moved an alias; ``alias_history``
(re-applied from ``sql/views``) shows it. Adding a column to a partitioned table adds it to every
partition, without rewriting them (a NULL default).
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from psycopg import sql

from recsys.storage import sqlfiles
from recsys.storage.bulk import driver_connection, schema_of

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, type) added. ``op.add_column`` would not put them in the configured schema
#: (its DDL bypasses the schema translation), so they are written with psycopg.sql.
_COLUMNS = (
    ("user_embeddings", "layer0", "real[]"),
    ("item_embeddings", "layer0", "real[]"),
    ("version_aliases", "note", "text"),
)


def upgrade() -> None:
    conn = op.get_bind()
    for table, column, kind in _COLUMNS:
        _alter(conn, "ALTER TABLE {} ADD COLUMN {} " + kind, table, column)
    sqlfiles.create_views(conn, ["alias_history"])


def downgrade() -> None:
    conn = op.get_bind()
    # The view reads the note: drop it first, then put it back as 0002 made it.
    sqlfiles.drop_views(conn, ["alias_history"])
    for table, column, _kind in _COLUMNS:
        _alter(conn, "ALTER TABLE {} DROP COLUMN {}", table, column)
    analyst_views = importlib.import_module("recsys_migrations.versions.0002_analyst_views")
    sqlfiles.execute_in_schema(conn, [analyst_views.ALIAS_HISTORY])


def _alter(conn: sa.Connection, statement: str, table: str, column: str) -> None:
    query = sql.SQL(statement).format(
        sql.Identifier(schema_of(conn), table), sql.Identifier(column)
    )
    driver_connection(conn).cursor().execute(query)
