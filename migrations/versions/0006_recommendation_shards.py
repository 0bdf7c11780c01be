"""recommendation shards: the ledger of shards Ray workers committed, so none is written twice

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``run --ray`` scores users in shards on Ray workers, each writing its rows into the run's own
recommendations table over its own connection. A shard's row here is inserted in the transaction
that writes its rows: a retried shard whose rows committed already finds it and writes nothing,
and two attempts at one shard wait for each other on the key. The driver publishes only when
every shard is here and the counts add up. Rows go with their run (``ON DELETE CASCADE``), so
pruning a version removes them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommendation_shards",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("user_count", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("users_without", sa.Integer(), nullable=False),
        sa.Column("users_fewer_than_k", sa.Integer(), nullable=False),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column(
            "written_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recsys.version_runs.run_id"],
            name="recommendation_shards_run_fk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "shard"),
        schema="recsys",
    )


def downgrade() -> None:
    op.drop_table("recommendation_shards", schema="recsys")
