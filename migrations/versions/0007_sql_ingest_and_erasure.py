"""ingest watermarks, the erasure audit and its salt

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``ingest sql --since-last`` reads only rows past the watermark of the last successful ingest from
the same source; that watermark is a row of ``ingest_watermarks``, written in the ingest's own
transaction so that it moves only when the rows it covers are committed.

``forget`` erases users and records each erasure in ``erasures``: when, how many rows of each
table, and a salted SHA-256 of the id, never the id. The salt is one random row made here
(``gen_random_uuid`` draws from the server's strong random source), so the hashes cannot be
matched against those of another installation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_watermarks",
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("watermark_column", sa.Text(), nullable=False),
        sa.Column("watermark", sa.Text(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source_key"),
        schema="recsys",
    )
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_hash", sa.Text(), nullable=False),
        sa.Column("rows", pg.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("erasure_id"),
        schema="recsys",
    )
    op.create_index("erasures_user_hash_idx", "erasures", ["user_hash"], schema="recsys")
    salt = op.create_table(
        "erasure_salt",
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        schema="recsys",
    )
    random = sa.func.uuid_send(sa.func.gen_random_uuid())
    op.get_bind().execute(sa.insert(salt).from_select(["salt"], sa.select(random.concat(random))))


def downgrade() -> None:
    op.drop_table("erasure_salt", schema="recsys")
    op.drop_index("erasures_user_hash_idx", table_name="erasures", schema="recsys")
    op.drop_table("erasures", schema="recsys")
    op.drop_table("ingest_watermarks", schema="recsys")
