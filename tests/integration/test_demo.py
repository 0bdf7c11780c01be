"""``recsys-job demo``, the README's first command, on a schema that does not exist yet: it
migrates, loads the synthetic data set, runs the real ``run`` command and shows three users'
lists; a second demo replaces the version rather than refusing."""

import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.integration._hardening_runs import production_recommendations
from tests.integration._published_versions import cli


def test_demo_builds_and_serves_a_version_and_runs_again(
    bare_engine: sa.Engine, database_url: URL, schema: str
) -> None:
    for attempt in range(2):
        result = cli(database_url, schema, "demo", "--epochs", "2", "--seed", str(attempt))
        assert result.exit_code == 0, result.output
        assert "published demo: best epoch" in result.stdout
        assert result.stdout.count(", version demo") == 3  # the three sample users' lists
    served = production_recommendations
    with bare_engine.connect() as conn:
        per_version = conn.execute(
            sa.select(served.c.version, sa.func.count()).group_by(served.c.version)
        ).all()
    assert per_version == [("demo", 600 * 10)]  # top 10 for every synthetic user, one version
