"""SQLAlchemy Core handles on the analysts' views (``sql/views/``) that the CLI reads.

The CLI reads these views rather than re-deriving their logic (the published-only filter, the
alias fallback, the lift over the baseline), so a figure on the terminal is the figure an analyst
gets in SQL. Declared in the placeholder schema like :mod:`recsys.storage.schema`; a test checks the
columns against the migrated views. The views are created by migrations, never from here.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from recsys.storage.database import SCHEMA_PLACEHOLDER

metadata = sa.MetaData(schema=SCHEMA_PLACEHOLDER)

published_recommendations = sa.Table(
    "published_recommendations",
    metadata,
    sa.Column("version", sa.Text),
    sa.Column("user_id", sa.BigInteger),
    sa.Column("rank", sa.SmallInteger),
    sa.Column("movie_id", sa.BigInteger),
    sa.Column("title", sa.Text),
    sa.Column("genres", pg.ARRAY(sa.Text)),
    sa.Column("year", sa.SmallInteger),
    sa.Column("score", sa.REAL),
    sa.Column("source", sa.Text),
)

current_aliases = sa.Table(
    "current_aliases",
    metadata,
    sa.Column("alias", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("since", sa.DateTime(timezone=True)),
    sa.Column("resolved_by", sa.Text),
)

evaluation_vs_baseline = sa.Table(
    "evaluation_vs_baseline",
    metadata,
    sa.Column("version", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("metric", sa.Text),
    sa.Column("k", sa.Integer),
    sa.Column("value", sa.Float),
    sa.Column("baseline_value", sa.Float),
    sa.Column("lift", sa.Float),
    sa.Column("relative_lift", sa.Float),
    sa.Column("users_counted", sa.Integer),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("strongest_baseline", sa.Text),
    sa.Column("strongest_baseline_value", sa.Float),
    sa.Column("lift_over_strongest", sa.Float),
    sa.Column("relative_lift_over_strongest", sa.Float),
)

published_similar_items = sa.Table(
    "published_similar_items",
    metadata,
    sa.Column("version", sa.Text),
    sa.Column("movie_id", sa.BigInteger),
    sa.Column("title", sa.Text),
    sa.Column("rank", sa.SmallInteger),
    sa.Column("similar_movie_id", sa.BigInteger),
    sa.Column("similar_title", sa.Text),
    sa.Column("similar_genres", pg.ARRAY(sa.Text)),
    sa.Column("similar_year", sa.SmallInteger),
    sa.Column("score", sa.REAL),
)
