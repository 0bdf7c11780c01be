"""analyst views: recommendations by alias, evaluation against the baseline, alias history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The views are created from the files in ``sql/views/`` (shipped as package ``recsys_sql``), the
single source analysts read too, with ``search_path`` set to the configured schema so their
unqualified names resolve there.

Caveat: unlike a frozen migration, this one reads the files as they are when it runs. A later
change to a view file therefore needs a new migration that re-applies it (``create_views`` with
that name; a changed column list needs a drop first), so that databases already past 0002 get the
change too; a fresh database simply gets the current file here and the same view in the end.
A view whose file comes to read a column a later revision adds cannot be made from the file here:
its text as of this revision is kept below instead (``alias_history``, whose ``note`` 0004 adds).
"""

from collections.abc import Sequence

from alembic import op

from recsys.storage import sqlfiles

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: In creation order: later views read earlier ones.
VIEWS = (
    "published_recommendations",
    "current_aliases",
    "alias_recommendations",
    "production_recommendations",
    "evaluation_vs_baseline",
    "alias_history",
)


#: ``alias_history`` as this revision made it; 0004 re-applies the file, which reads ``note``.
ALIAS_HISTORY = """
CREATE OR REPLACE VIEW alias_history AS
SELECT
    h.alias,
    lag(h.version) OVER (PARTITION BY h.alias ORDER BY h.valid_from) AS previous_version,
    h.version,
    h.valid_from,
    h.valid_to,
    h.valid_to IS NULL AS is_current,
    coalesce(v.status, 'pruned') AS version_status
FROM version_aliases AS h
LEFT JOIN model_versions AS v ON v.name = h.version
"""


def upgrade() -> None:
    conn = op.get_bind()
    sqlfiles.create_views(conn, [view for view in VIEWS if view != "alias_history"])
    sqlfiles.execute_in_schema(conn, [ALIAS_HISTORY])


def downgrade() -> None:
    sqlfiles.drop_views(op.get_bind(), VIEWS[::-1])
