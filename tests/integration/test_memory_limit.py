"""``recsys-job run``'s memory check against a real PostgreSQL: the run's estimate is what
``estimate_bytes`` says for the data it read, and a limit one byte under it refuses the run
before anything is written, one byte over it lets it run; without ``--memory-limit`` the memory
available is the limit."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy.engine import URL

from recsys import memory
from recsys.errors import InvalidInput
from recsys.model.setting_choice import NEGATIVES
from tests.integration._run_data import (
    FAST_OPTIONS,
    cli,
    expect_published,
    populated_schema,
    stray_tables,
    version_row,
)


@pytest.fixture(scope="module")
def sized(database_url: URL) -> Iterator[tuple[sa.Engine, str, int]]:
    """The schema, and the estimate of a run with the fast options, from what its first run
    recorded reading (the same data and options give the same counts)."""
    with populated_schema(database_url) as (engine, name):
        result = cli(database_url, name, "--model-version", "sized", *FAST_OPTIONS)
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            stats = version_row(conn, "sized").data_stats
        dim = int(FAST_OPTIONS[FAST_OPTIONS.index("--dim") + 1])
        # The GF-CF baseline's rank counts too: the estimate covers the filter's SVD and blocks.
        estimate = memory.estimate_bytes(
            stats["users"],
            stats["items"],
            stats["train_interactions"],
            stats["ratings_read"],
            dim,
            spectral_rank=stats["gf_cf"]["rank"],
            batch=stats["training_batch_size"],
            negative_candidates=NEGATIVES.highest,  # chosen by trials: counted at the most
        )
        assert stats["memory_estimate_mib"] == estimate >> 20
        yield engine, name, estimate


def _refused(engine: sa.Engine, version: str, result: Result, where: str) -> None:
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert f"more than {where}" in result.stderr
    with engine.connect() as conn:
        assert version_row(conn, version) is None
        assert stray_tables(conn) == []


def test_a_limit_one_byte_under_the_estimate_refuses_and_one_over_runs(
    sized: tuple[sa.Engine, str, int], database_url: URL
) -> None:
    engine, name, estimate = sized
    under = cli(
        database_url, name, "--model-version", "under", *FAST_OPTIONS,
        "--memory-limit", str(estimate - 1),
    )  # fmt: skip
    _refused(engine, "under", under, "the memory limit given")
    over = cli(
        database_url, name, "--model-version", "over", *FAST_OPTIONS,
        "--memory-limit", str(estimate + 1),
    )  # fmt: skip
    assert over.exit_code == 0, over.output
    expect_published(engine, "over")


def test_without_a_limit_the_memory_available_is_the_limit(
    sized: tuple[sa.Engine, str, int], database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, name, estimate = sized
    monkeypatch.setattr(memory, "available_bytes", lambda: estimate - 1)
    short = cli(database_url, name, "--model-version", "short", *FAST_OPTIONS)
    _refused(engine, "short", short, "the memory available")
    monkeypatch.setattr(memory, "available_bytes", lambda: estimate + 1)
    roomy = cli(database_url, name, "--model-version", "roomy", *FAST_OPTIONS)
    assert roomy.exit_code == 0, roomy.output
    expect_published(engine, "roomy")
