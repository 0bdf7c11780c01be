"""Degenerate data through the real ``recsys-job run`` against PostgreSQL: each case publishes a
sensible version or stops with a message naming the problem before anything is written.

Runs go through click's CliRunner in this process: the whole command, minus a process start that
would pay TensorFlow's ~7 s import per case (test_hardening_bad_input.py runs the installed
script). Each test gets a schema of its own.
"""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.errors import InvalidInput
from recsys.storage import schema as tables
from tests.integration._hardening_inputs import Rating, error_lines, load_ratings
from tests.integration._ingest_files import table_checksums
from tests.integration._run_data import (
    FAST_OPTIONS,
    cli,
    recommendations,
    stray_tables,
    version_row,
    visible_rows,
)

T0 = int(datetime(2001, 1, 1, tzinfo=UTC).timestamp())
N_ITEMS = 10
#: Users 1-8 each rate 6 of the 10 items, one item per 1000 s; every item has several raters.
CIRCLE: list[Rating] = [
    (user, (user + step) % N_ITEMS + 1, 4.0, T0 + 1000 * step + user)
    for user in range(1, 9)
    for step in range(6)
]
LONE_USER = 99
NEW_ITEM = 500
LATE = T0 + 10**6  # after every rating of CIRCLE


def _run(database_url: URL, schema: str, version: str, *options: str):
    return cli(database_url, schema, "--model-version", version, *FAST_OPTIONS, *options)


def _refused(
    engine: sa.Engine, database_url: URL, schema: str, message: str, *options: str
) -> None:
    """The run exits 2 with ``message`` and every table is as it was (no version registered)."""
    before = table_checksums(engine, schema)
    result = _run(database_url, schema, "degenerate", *options)
    assert result.exit_code == InvalidInput.exit_code, result.output
    (line,) = error_lines(result.stderr)
    assert message in line, result.stderr
    assert table_checksums(engine, schema) == before


def _published(engine: sa.Engine, database_url: URL, schema: str, *options: str) -> sa.Row:
    """Publish version ``v`` and return its registry row."""
    result = _run(database_url, schema, "v", *options)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        row = version_row(conn, "v")
    assert row.status == "published"
    return row


def _ids(engine: sa.Engine, table: sa.Table, column: str) -> set[int]:
    with engine.connect() as conn:
        query = sa.select(table.c[column]).where(table.c.version == "v")
        return set(conn.execute(query).scalars())


def _lists(engine: sa.Engine) -> dict[int, list[int]]:
    """Recommended movies per user, in rank order, checking ranks run 1, 2, ... without gaps."""
    lists: dict[int, list[int]] = {}
    with engine.connect() as conn:
        for user, rank, movie in recommendations(conn, "v"):
            lists.setdefault(user, []).append(movie)
            assert rank == len(lists[user])
    return lists


def _rated(ratings: list[Rating]) -> dict[int, set[int]]:
    rated: dict[int, set[int]] = {}
    for user, movie, _, _ in ratings:
        rated.setdefault(user, set()).add(movie)
    return rated


def test_no_ratings_at_all(engine: sa.Engine, database_url: URL, schema: str) -> None:
    load_ratings(engine, [], users=[1, 2, 3])
    _refused(engine, database_url, schema, "no ratings to train on; ingest some first")


def test_one_user(engine: sa.Engine, database_url: URL, schema: str) -> None:
    load_ratings(engine, [r for r in CIRCLE if r[0] == 1], users=[2])
    _refused(engine, database_url, schema, "only one user has ratings to train on")


@pytest.mark.parametrize("split", ["stratified", "leave-last"])
def test_every_user_with_a_single_rating_leaves_nothing_to_test(
    engine: sa.Engine, database_url: URL, schema: str, split: str
) -> None:
    load_ratings(engine, [(user, user % 3, 4.0, T0 + user) for user in range(1, 7)])
    message = f"the {split} split left nothing to test: every user has a single interaction"
    _refused(engine, database_url, schema, message, "--split", split, "--top-k", "2")


def test_ratings_all_at_one_time_leave_the_temporal_split_nothing_to_train_on(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    load_ratings(engine, [(user, movie, stars, T0) for user, movie, stars, _ in CIRCLE])
    message = "the temporal split left nothing to train on"
    _refused(engine, database_url, schema, message, "--split", "temporal")


def test_a_test_set_of_newcomers_only_cannot_be_evaluated(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    newcomers = [(user, movie, 3.0, LATE + user) for user in (50, 51) for movie in (1, 2, NEW_ITEM)]
    load_ratings(engine, CIRCLE + newcomers)
    cutoff = datetime.fromtimestamp(LATE, UTC).strftime("%Y-%m-%d")
    message = "none of the 6 test interactions of the temporal split has both its user and its"
    _refused(engine, database_url, schema, message, "--split", "temporal", "--cutoff", cutoff)


@pytest.mark.parametrize("split", ["stratified", "temporal", "leave-last"])
def test_a_user_with_a_single_rating_under_each_split(
    engine: sa.Engine, database_url: URL, schema: str, split: str
) -> None:
    """Stratified and leave-last keep a lone rating in training, so the model knows the user;
    the temporal split puts this one (the latest rating) in test: the user gets popularity
    fallbacks, no embedding, and that test interaction is not evaluated."""
    load_ratings(engine, [*CIRCLE, (LONE_USER, 1, 5.0, LATE)])
    row = _published(engine, database_url, schema, "--split", split, "--top-k", "3")

    stats = row.data_stats
    trained = split != "temporal"
    assert (LONE_USER in _ids(engine, tables.user_embeddings, "user_id")) == trained
    lone = _lists(engine)[LONE_USER]
    assert len(lone) == 3 and 1 not in lone
    with engine.connect() as conn:
        sources = conn.execute(
            sa.select(tables.recommendations.c.source)
            .where(tables.recommendations.c.user_id == LONE_USER)
            .distinct()
        ).scalars()
        assert list(sources) == ["model" if trained else "fallback"]
    assert stats["fallback_users"] == (0 if trained else 1)
    unevaluated = stats["test_interactions"] - stats["test_interactions_evaluated"]
    assert unevaluated == (0 if trained else 1)


def test_items_seen_only_in_test_get_no_embedding_and_are_never_recommended(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    load_ratings(engine, [*CIRCLE, *((user, NEW_ITEM, 5.0, LATE + user) for user in (1, 2, 3))])
    result = _run(database_url, schema, "v", "--split", "temporal", "--top-k", "3")
    assert result.exit_code == 0, result.output
    assert "test interactions evaluated; the others' user or item has no training" in result.stdout

    assert NEW_ITEM not in _ids(engine, tables.item_embeddings, "movie_id")
    assert NEW_ITEM not in _ids(engine, tables.recommendations, "movie_id")
    with engine.connect() as conn:
        stats = version_row(conn, "v").data_stats
        counted = conn.execute(
            sa.select(sa.func.max(tables.evaluation_results.c.users_counted)).where(
                tables.evaluation_results.c.version == "v"
            )
        ).scalar_one()
    assert stats["items_in_training"] == N_ITEMS
    assert stats["test_interactions"] - stats["test_interactions_evaluated"] == 3
    assert 0 < counted <= 8


def test_users_who_rated_every_item_or_nearly_get_none_or_fewer_never_padding(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """User 1 rated every item (early, so all in training: the BPR sampler has no negative for
    them and skips them, but they stay in the graph); user 2 rated all but two. Rows are never
    padded and never repeat a rated movie."""
    everything = [(1, movie, 4.0, T0 - 10**5 + movie) for movie in range(1, N_ITEMS + 1)]
    circle = [r for r in CIRCLE if r[0] != 1]
    nearly = [(2, movie, 3.0, T0 - 10**5 + movie) for movie in (1, 2)]  # CIRCLE has 3-8
    ratings = everything + circle + nearly
    load_ratings(engine, ratings)
    result = _run(database_url, schema, "v", "--split", "temporal", "--top-k", "3")
    assert result.exit_code == 0, result.output
    assert "users without a recommendation: 1, with fewer than 3: 1" in result.stdout

    lists, rated = _lists(engine), _rated(ratings)
    assert 1 not in lists
    assert len(lists[2]) == 2 and set(lists[2]) == set(range(1, N_ITEMS + 1)) - rated[2]
    assert all(len(movies) == 3 for user, movies in lists.items() if user != 2)
    assert all(not set(movies) & rated[user] for user, movies in lists.items())
    assert 1 in _ids(engine, tables.user_embeddings, "user_id")
    with engine.connect() as conn:
        stats = version_row(conn, "v").data_stats
        null_scores = conn.execute(
            sa.select(sa.func.count()).where(
                tables.recommendations.c.version == "v", tables.recommendations.c.score.is_(None)
            )
        ).scalar_one()
    assert (stats["users_without_recommendations"], stats["users_with_fewer_than_k"]) == (1, 1)
    assert null_scores == 0


def test_a_validation_carve_with_nothing_to_hold_out_trains_without_validation(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    """Two ratings per user: one is tested, and the single training one cannot be held out."""
    load_ratings(engine, [r for r in CIRCLE if (r[3] - T0) // 1000 < 2])
    result = _run(database_url, schema, "v", "--val-ratio", "0.5", "--top-k", "3")
    assert result.exit_code == 0, result.output
    assert "best epoch 3 of 3" in result.stdout
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(tables.training_history).where(tables.training_history.c.version == "v")
        ).all()
        assert version_row(conn, "v").params["val_ratio"] == 0.5
    assert [h.epoch for h in history] == [1, 2, 3]
    assert all(h.validation_metric is None and h.validation_value is None for h in history)


def test_a_diverging_learning_rate_fails_the_run_with_a_clear_message(
    engine: sa.Engine, database_url: URL, schema: str
) -> None:
    load_ratings(engine, CIRCLE)
    result = _run(database_url, schema, "v", "--learning-rate", "1e30")
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result.stderr)
    assert "training diverged at epoch" in line and "lower learning rate" in line
    with engine.connect() as conn:
        row = version_row(conn, "v")
        assert row.status == "failed" and "training diverged" in row.error
        assert visible_rows(conn, "v") == dict.fromkeys(visible_rows(conn, "v"), 0)
        assert stray_tables(conn) == []
