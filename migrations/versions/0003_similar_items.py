"""similar items: each version's nearest items per item, and the views that add titles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

``similar_items`` is LIST-partitioned by version like the other outputs, so a run attaches it with
them. Versions published before this migration simply have no rows in it. The views are created
from ``sql/views/`` as in 0002; the production views (``production_recommendations`` re-created)
name the version ``production`` points to as a constant, which promote keeps up to date, so that
PostgreSQL plans one partition however many versions are kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from recsys.storage import sqlfiles
from recsys.versions import aliases

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "similar_items",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("similar_movie_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.REAL(), nullable=False),
        sa.CheckConstraint("rank >= 1", name="similar_items_rank_positive"),
        sa.ForeignKeyConstraint(["version"], ["recsys.model_versions.name"]),
        sa.PrimaryKeyConstraint("version", "movie_id", "rank"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    sqlfiles.create_views(op.get_bind(), ["published_similar_items"])
    aliases.pin_production(op.get_bind())


def downgrade() -> None:
    sqlfiles.drop_views(op.get_bind(), ["production_similar_items", "published_similar_items"])
    sqlfiles.create_views(op.get_bind(), ["production_recommendations"])  # unpinned
    op.drop_table("similar_items", schema="recsys")
