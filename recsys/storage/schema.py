"""SQLAlchemy Core tables for everything recsys keeps in PostgreSQL.

The tables are declared in the placeholder schema ``recsys``; engines from
:func:`recsys.storage.database.connect` translate it to the configured schema. Alembic migrations
are the only way the schema changes; ``tests/integration/test_migrations.py`` checks these
declarations against the migrated database so the two cannot drift.

The output tables are LIST-partitioned by version: a run loads each output into a table of
its own and publishing attaches them all and flips the registry status in one transaction, so a
version appears to readers whole or not at all, and pruning one is a DROP TABLE.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from recsys.storage.database import SCHEMA_PLACEHOLDER
from recsys.versions.status import RunStatus, VersionStatus

metadata = sa.MetaData(schema=SCHEMA_PLACEHOLDER)

#: Version names become SQL literals in partition bounds and appear in file names; keep them tame.
VERSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
RECOMMENDATION_SOURCES = ("model", "fallback")
#: Stars a rating may have: the CHECK on ``ratings`` and what ingest validation accepts.
MIN_RATING, MAX_RATING = 0.5, 5.0

movies = sa.Table(
    "movies",
    metadata,
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("genres", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("year", sa.SmallInteger),
    sa.CheckConstraint("movie_id >= 0", name="movies_id_nonnegative"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("gender", sa.Text),
    sa.Column("age", sa.SmallInteger),
    sa.Column("occupation", sa.Text),
    sa.Column("zip_code", sa.Text),
    sa.CheckConstraint("user_id >= 0", name="users_id_nonnegative"),
)

ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column(
        "user_id",
        sa.BigInteger,
        sa.ForeignKey(f"{SCHEMA_PLACEHOLDER}.users.user_id", name="ratings_user_fk"),
        primary_key=True,
    ),
    sa.Column(
        "movie_id",
        sa.BigInteger,
        sa.ForeignKey(f"{SCHEMA_PLACEHOLDER}.movies.movie_id", name="ratings_movie_fk"),
        primary_key=True,
    ),
    # NULL for implicit feedback (an interaction without a rating).
    sa.Column("rating", sa.REAL),
    sa.Column("rated_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(
        f"rating BETWEEN {MIN_RATING} AND {MAX_RATING}", name="ratings_rating_range"
    ),
    sa.Index("ratings_movie_idx", "movie_id"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("params", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("data_stats", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("phase_seconds", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("code_version", sa.Text),
    sa.Column("error", sa.Text),
    # The run whose output partitions are (or will be) attached under this name.
    sa.Column("run_id", sa.BigInteger),
    sa.CheckConstraint(f"name ~ '{VERSION_NAME_PATTERN}'", name="model_versions_name_format"),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in VersionStatus.stored())),
        name="model_versions_status_valid",
    ),
)

version_runs = sa.Table(
    "version_runs",
    metadata,
    sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "version",
        sa.Text,
        sa.ForeignKey(
            f"{SCHEMA_PLACEHOLDER}.model_versions.name",
            name="version_runs_version_fk",
            ondelete="CASCADE",
        ),
        nullable=False,
    ),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("replacing", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("host", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("error", sa.Text),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in RunStatus)),
        name="version_runs_status_valid",
    ),
    sa.Index("version_runs_version_idx", "version"),
)


def _version_column() -> sa.Column:
    """The partition key of an output table. No foreign key to ``model_versions``: attaching a
    partition would scan every row to validate it, under the publish's exclusive lock (see
    migration 0005); the registry's own transactions keep outputs and rows in step."""
    return sa.Column("version", sa.Text, primary_key=True)


user_embeddings = sa.Table(
    "user_embeddings",
    metadata,
    _version_column(),
    sa.Column("user_id", sa.BigInteger, primary_key=True),
    sa.Column("embedding", pg.ARRAY(sa.REAL), nullable=False),
    # The layer-0 (trainable) row a later run can warm-start from; NULL before migration 0004.
    sa.Column("layer0", pg.ARRAY(sa.REAL)),
    postgresql_partition_by="LIST (version)",
)

item_embeddings = sa.Table(
    "item_embeddings",
    metadata,
    _version_column(),
    sa.Column("movie_id", sa.BigInteger, primary_key=True),
    sa.Column("embedding", pg.ARRAY(sa.REAL), nullable=False),
    # The layer-0 (trainable) row a later run can warm-start from; NULL before migration 0004.
    sa.Column("layer0", pg.ARRAY(sa.REAL)),
    postgresql_partition_by="LIST (version)",
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    _version_column(),
    sa.Column("user_id", sa.BigInteger, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("movie_id", sa.BigInteger, nullable=False),
    sa.Column("score", sa.REAL, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.CheckConstraint("rank >= 1", name="recommendations_rank_positive"),
    sa.CheckConstraint(
        "source IN ({})".format(", ".join(f"'{s}'" for s in RECOMMENDATION_SOURCES)),
        name="recommendations_source_valid",
    ),
    postgresql_partition_by="LIST (version)",
)

#: For every item the model learnt, its ``similar_k`` nearest items by cosine of the final
#: embeddings (the item itself excluded), best first.
similar_items = sa.Table(
    "similar_items",
    metadata,
    _version_column(),
    sa.Column("movie_id", sa.BigInteger, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("similar_movie_id", sa.BigInteger, nullable=False),
    sa.Column("score", sa.REAL, nullable=False),
    sa.CheckConstraint("rank >= 1", name="similar_items_rank_positive"),
    postgresql_partition_by="LIST (version)",
)

evaluation_results = sa.Table(
    "evaluation_results",
    metadata,
    _version_column(),
    # "lightgcn" or a baseline such as "popularity".
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("k", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("users_counted", sa.Integer, nullable=False),
    postgresql_partition_by="LIST (version)",
)

training_history = sa.Table(
    "training_history",
    metadata,
    _version_column(),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("loss", sa.Float, nullable=False),
    sa.Column("validation_metric", sa.Text),
    sa.Column("validation_value", sa.Float),
    sa.Column("seconds", sa.Float, nullable=False),
    postgresql_partition_by="LIST (version)",
)

#: Output tables in the order a run writes them; each is LIST-partitioned by version.
OUTPUT_TABLES = (
    training_history,
    evaluation_results,
    user_embeddings,
    item_embeddings,
    similar_items,
    recommendations,
)

#: One row per shard of a run's recommendations that a Ray worker committed (``run --ray``),
#: inserted in the transaction that writes the shard's rows: a retried shard that finds its row
#: writes nothing, and the publish checks every shard is here (recsys/versions/shard_ledger.py).
recommendation_shards = sa.Table(
    "recommendation_shards",
    metadata,
    sa.Column(
        "run_id",
        sa.BigInteger,
        sa.ForeignKey(
            f"{SCHEMA_PLACEHOLDER}.version_runs.run_id",
            name="recommendation_shards_run_fk",
            ondelete="CASCADE",
        ),
        primary_key=True,
    ),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("user_count", sa.Integer, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("users_without", sa.Integer, nullable=False),
    sa.Column("users_fewer_than_k", sa.Integer, nullable=False),
    # The worker that wrote it, for whoever reads a run's shards afterwards.
    sa.Column("host", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column(
        "written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

version_aliases = sa.Table(
    "version_aliases",
    metadata,
    sa.Column("alias", sa.Text, primary_key=True),
    sa.Column("valid_from", sa.DateTime(timezone=True), primary_key=True),
    # No foreign key: history outlives pruned versions. The current row has valid_to NULL.
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True)),
    # Why the alias moved, when a run's --if-better gate moved it: the figures it compared.
    sa.Column("note", sa.Text),
    sa.Index(
        "version_aliases_current",
        "alias",
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    ),
)

#: The watermark of the last successful ``ingest sql --since-last`` from each source (keyed by a
#: hash of the source's text and the watermark column), as the column's value in text.
ingest_watermarks = sa.Table(
    "ingest_watermarks",
    metadata,
    sa.Column("source_key", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("watermark_column", sa.Text, nullable=False),
    sa.Column("watermark", sa.Text, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column(
        "ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

#: One row per user ``forget`` erased: a salted hash of the id (never the id) and the rows
#: deleted from each table.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("erasure_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "erased_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("user_hash", sa.Text, nullable=False),
    sa.Column("rows", pg.JSONB, nullable=False),
    sa.Index("erasures_user_hash_idx", "user_hash"),
)

#: The installation's salt for :data:`erasures`' hashes: one random row made by migration 0007.
erasure_salt = sa.Table(
    "erasure_salt",
    metadata,
    sa.Column("salt", sa.LargeBinary, nullable=False),
)
