"""The report page from hand-made data: what it shows, and that it needs nothing from outside."""

import re
from datetime import UTC, datetime

from recsys.report.page import ReportData, render
from recsys.versions.listing import Alias, Epoch, Metric, VersionDetails

WHEN = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def _version(name: str, ndcg: float, params: dict[str, object]) -> VersionDetails:
    return VersionDetails(
        name=name,
        status="published",
        created_at=WHEN,
        started_at=WHEN,
        finished_at=WHEN,
        published_at=WHEN,
        seconds=12.5,
        metrics=[
            Metric("lightgcn", "precision", 10, 0.3, 0.2, 0.1, 0.5, 900),
            Metric("lightgcn", "ndcg", 10, ndcg, 0.25, ndcg - 0.25, ndcg / 0.25 - 1, 900),
        ],
        aliases=[Alias("production", "alias")],
        params=params,
        data_stats={"users": 943, "items": 1682, "interactions": 100_000},
        phase_seconds={"read": 0.4, "train": 9.0},
        code_version="0.1.0+abc",
        epochs=2,
    )


HISTORY = [Epoch(1, 0.69, "ndcg@10", 0.30, 1.0), Epoch(2, 0.40, "ndcg@10", 0.35, 1.0)]


def test_first_version_page() -> None:
    page = render(ReportData(_version("v1", 0.4, {"dim": 64, "cutoff": None}), HISTORY, None, []))
    assert "<h1>Version v1</h1>" in page
    assert "published 2026-01-02 03:04 UTC · alias production" in page
    assert "nothing earlier to compare with" in page and "change vs" not in page
    assert "<td class=num>0.4000</td><td class=num>0.2500</td><td class=num>+0.1500</td>" in page
    assert "+60.0% vs popularity" in page
    assert "<tr><th>cutoff</th><td>-</td></tr>" in page  # unset settings show as '-'
    assert "100,000 interactions" in page and "2 epochs" in page
    assert "recorded no validation figure" not in page
    assert page.count('src="data:image/png;base64,') == 2
    assert not re.search(r"https?://|<script|<link", page)


def test_previous_version_beside_this_one() -> None:
    previous = _version("v1", 0.4, {"dim": 64, "seed": 1})
    page = render(
        ReportData(_version("v2", 0.45, {"dim": 32, "seed": 1}), HISTORY, previous, HISTORY)
    )
    assert "Evaluation against the popularity baseline and v1" in page
    assert "<th class=num>change vs v1</th>" in page
    assert "<td class=num>0.4000</td><td class=num>+0.0500</td>" in page  # ndcg: v1, change
    assert "+0.0500 vs v1" in page
    assert '<tr class="changed"><th>dim</th><td>32</td><td>64</td></tr>' in page
    assert "<tr><th>seed</th><td>1</td><td>1</td></tr>" in page


def test_text_is_escaped() -> None:
    page = render(ReportData(_version("v1", 0.4, {"note": "<b>&"}), [], None, []))
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page


def test_a_run_without_validation_says_so() -> None:
    history = [Epoch(1, 0.69, None, None, 1.0), Epoch(2, 0.5, None, None, 1.0)]
    page = render(ReportData(_version("v1", 0.4, {}), history, None, []))
    assert "v1 recorded no validation figure per epoch" in page
