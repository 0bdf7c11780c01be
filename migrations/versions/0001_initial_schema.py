"""initial schema: inputs, version registry, partitioned outputs, aliases

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Tables are named in the placeholder schema ``recsys``; env.py's schema_translate_map puts them in
the configured schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "data_stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "phase_seconds",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("code_version", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'", name="model_versions_name_format"
        ),
        sa.CheckConstraint(
            "status IN ('running', 'published', 'failed')", name="model_versions_status_valid"
        ),
        sa.PrimaryKeyConstraint("name"),
        schema="recsys",
    )
    op.create_table(
        "movies",
        sa.Column("movie_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("genres", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("movie_id >= 0", name="movies_id_nonnegative"),
        sa.PrimaryKeyConstraint("movie_id"),
        schema="recsys",
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("gender", sa.Text(), nullable=True),
        sa.Column("age", sa.SmallInteger(), nullable=True),
        sa.Column("occupation", sa.Text(), nullable=True),
        sa.Column("zip_code", sa.Text(), nullable=True),
        sa.CheckConstraint("user_id >= 0", name="users_id_nonnegative"),
        sa.PrimaryKeyConstraint("user_id"),
        schema="recsys",
    )
    op.create_table(
        "version_aliases",
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("alias", "valid_from"),
        schema="recsys",
    )
    op.create_index(
        "version_aliases_current",
        "version_aliases",
        ["alias"],
        unique=True,
        schema="recsys",
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "evaluation_results",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("users_counted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("version", "model", "metric", "k"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    op.create_table(
        "item_embeddings",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("embedding", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("version", "movie_id"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    op.create_table(
        "ratings",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.REAL(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rating BETWEEN 0.5 AND 5.0", name="ratings_rating_range"),
        sa.ForeignKeyConstraint(["movie_id"], ["recsys.movies.movie_id"], name="ratings_movie_fk"),
        sa.ForeignKeyConstraint(["user_id"], ["recsys.users.user_id"], name="ratings_user_fk"),
        sa.PrimaryKeyConstraint("user_id", "movie_id"),
        schema="recsys",
    )
    op.create_index("ratings_movie_idx", "ratings", ["movie_id"], unique=False, schema="recsys")
    op.create_table(
        "recommendations",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.REAL(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint("source IN ('model', 'fallback')", name="recommendations_source_valid"),
        sa.CheckConstraint("rank >= 1", name="recommendations_rank_positive"),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("version", "user_id", "rank"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    op.create_table(
        "training_history",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
        sa.Column("validation_metric", sa.Text(), nullable=True),
        sa.Column("validation_value", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("version", "epoch"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    op.create_table(
        "user_embeddings",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("embedding", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("version", "user_id"),
        schema="recsys",
        postgresql_partition_by="LIST (version)",
    )
    op.create_table(
        "version_runs",
        sa.Column("run_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("replacing", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="version_runs_status_valid"
        ),
        sa.ForeignKeyConstraint(
            ["version"],
            ["recsys.model_versions.name"],
            name="version_runs_version_fk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id"),
        schema="recsys",
    )
    op.create_index(
        "version_runs_version_idx", "version_runs", ["version"], unique=False, schema="recsys"
    )


def downgrade() -> None:
    op.drop_index("version_runs_version_idx", table_name="version_runs", schema="recsys")
    op.drop_table("version_runs", schema="recsys")
    op.drop_table("user_embeddings", schema="recsys")
    op.drop_table("training_history", schema="recsys")
    op.drop_table("recommendations", schema="recsys")
    op.drop_index("ratings_movie_idx", table_name="ratings", schema="recsys")
    op.drop_table("ratings", schema="recsys")
    op.drop_table("item_embeddings", schema="recsys")
    op.drop_table("evaluation_results", schema="recsys")
    op.drop_index(
        "version_aliases_current",
        table_name="version_aliases",
        schema="recsys",
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_table("version_aliases", schema="recsys")
    op.drop_table("users", schema="recsys")
    op.drop_table("movies", schema="recsys")
    op.drop_table("model_versions", schema="recsys")
