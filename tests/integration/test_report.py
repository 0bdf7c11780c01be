"""``recsys-job report``: one self-contained HTML page per published version."""

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.storage import views
from tests.integration._published_versions import V1, V2, cli, two_versions

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    with two_versions(database_url) as pair:
        yield pair


def _report(database_url: URL, schema: str, version: str, out: Path) -> str:
    result = cli(database_url, schema, "report", version, "--out", str(out))
    assert result.exit_code == 0, result.output
    path = out / f"report-{version}.html"
    assert result.stdout.strip() == f"wrote {path}"
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained_with_plots_and_numbers(
    published: tuple[sa.Engine, str], database_url: URL, tmp_path: Path
) -> None:
    engine, schema = published
    page = _report(database_url, schema, V2, tmp_path / "reports")

    assert not re.search(r"https?://|<script|<link|@import|url\(", page, re.IGNORECASE)
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2  # training curves, metrics against the baseline
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)

    view = views.evaluation_vs_baseline
    with engine.connect() as conn:
        rows = conn.execute(sa.select(view).where(view.c.version.in_([V1, V2]))).all()
    figures = {(r.version, r.model, r.metric, r.k): r for r in rows}
    ndcg = figures[V2, "lightgcn", "ndcg", 10]
    gf_cf = figures[V2, "gf-cf", "ndcg", 10].value
    earlier = figures[V1, "lightgcn", "ndcg", 10].value
    for number in (ndcg.value, ndcg.baseline_value, earlier, gf_cf):
        assert f"{number:.4f}" in page
    assert f"{ndcg.value - earlier:+.4f}" in page
    assert f"{ndcg.lift_over_strongest:+.4f}" in page
    assert f"Evaluation against the baselines and {V1}" in page
    assert f"change vs {V1}" in page
    assert "recorded no validation figure" not in page  # v2 held out a validation set


def test_first_version_has_nothing_to_compare_with(
    published: tuple[sa.Engine, str], database_url: URL, tmp_path: Path
) -> None:
    page = _report(database_url, published[1], V1, tmp_path)
    assert "the first published version: nothing earlier to compare with" in page
    assert "change vs" not in page
    assert f"{V1} recorded no validation figure per epoch" in page


def test_report_refuses_an_unknown_version(
    published: tuple[sa.Engine, str], database_url: URL, tmp_path: Path
) -> None:
    result = cli(database_url, published[1], "report", "v9", "--out", str(tmp_path))
    assert result.exit_code == 1 and "no version 'v9'" in result.stderr
    assert list(tmp_path.iterdir()) == []
