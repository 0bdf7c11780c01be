"""evaluation_vs_baseline: the lift over the strongest baseline (popularity or gf-cf)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Runs now score a training-free spectral filter (``gf-cf``) beside popularity. The view keeps
its columns (the lift over popularity) and gains the strongest baseline of each metric and
cut-off, its value and the lift over it. Adding columns at the end is what ``CREATE OR REPLACE
VIEW`` allows, so the upgrade re-applies the file; the downgrade drops the view and makes it
again as 0002 made it, since a replaced view cannot lose columns.
"""

from collections.abc import Sequence

from alembic import op

from recsys.storage import sqlfiles

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: ``evaluation_vs_baseline`` as 0002 made it, for the downgrade.
BEFORE = """
CREATE VIEW evaluation_vs_baseline AS
SELECT
    e.version,
    e.model,
    e.metric,
    e.k,
    e.value,
    b.value AS baseline_value,
    e.value - b.value AS lift,
    e.value / NULLIF(b.value, 0) - 1 AS relative_lift,
    e.users_counted,
    v.published_at
FROM evaluation_results AS e
JOIN model_versions AS v ON v.name = e.version AND v.status = 'published'
LEFT JOIN evaluation_results AS b
    ON b.version = e.version AND b.model = 'popularity' AND b.metric = e.metric AND b.k = e.k
WHERE e.model <> 'popularity'
"""


def upgrade() -> None:
    sqlfiles.create_views(op.get_bind(), ["evaluation_vs_baseline"])


def downgrade() -> None:
    conn = op.get_bind()
    sqlfiles.drop_views(conn, ["evaluation_vs_baseline"])
    sqlfiles.execute_in_schema(conn, [BEFORE])
