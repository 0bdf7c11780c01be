"""``recsys-job run`` end to end against a real PostgreSQL: what a published version holds, how an
existing name is refused or replaced, concurrent runs, determinism, option checks and the splits.

The tests share one ingested schema (module fixture) and each writes versions of its own name, so
they do not see each other's rows; only the test that reorders the ratings gets a schema to itself.
"""

import functools
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

import recsys
import recsys_jobs.run
from recsys import pipeline
from recsys.errors import InvalidInput, VersionConflict
from recsys.model.native_kernel import csr_kernel
from recsys.pipeline import run
from recsys.storage import schema
from recsys.storage.bulk import schema_of
from recsys.versions import registry
from recsys_jobs.cli import main
from tests.fake_clock import SlowingClock
from tests.integration._run_data import (
    FAST_OPTIONS,
    N_ITEMS,
    N_RATED_USERS,
    N_USERS,
    UNRATED_USERS,
    cli,
    expect_published,
    fast_config,
    populate,
    populated_schema,
    quiet,
    recommendations,
    run_rows,
    run_tables,
    stray_tables,
    version_row,
    visible_rows,
)

METRICS = {"precision", "recall", "ndcg", "map", "hit_rate", "mrr"}

Populated = tuple[sa.Engine, str]


@pytest.fixture(scope="module")
def populated(database_url: URL) -> Iterator[Populated]:
    with populated_schema(database_url) as pair:
        yield pair


def _query(conn: sa.Connection, query: str, **params: object) -> sa.CursorResult:
    """Plain SQL over the test schema's tables, written with ``{s}`` for the schema."""
    return conn.execute(sa.text(query.format(s=f'"{schema_of(conn)}"')), params)


def _scalars(conn: sa.Connection, query: str, **params: object) -> list:
    return list(_query(conn, query, **params).scalars())


def _count(conn: sa.Connection, query: str, **params: object) -> int:
    return _scalars(conn, query, **params)[0]


def test_published_run_writes_every_output_and_the_registry(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    options = ("--top-k", "7", "--eval-k", "5,10", "--seed", "3", "--learning-rate", "0.01")
    options += ("--val-ratio", "0.1", "--similar-k", "4")
    result = cli(database_url, name, "--model-version", "full", *FAST_OPTIONS, *options)
    assert result.exit_code == 0, result.output
    assert "published full" in result.stdout

    with engine.connect() as conn:
        row = version_row(conn, "full")
        stats = row.data_stats

        per_user = _query(
            conn,
            "SELECT user_id, array_agg(rank ORDER BY rank), array_agg(DISTINCT source),"
            " count(DISTINCT movie_id) FROM {s}.recommendations WHERE version = 'full'"
            " GROUP BY user_id",
        ).all()
        all_users = set(_scalars(conn, "SELECT user_id FROM {s}.users"))
        assert len(all_users) == N_USERS
        assert {u for u, *_ in per_user} == all_users
        assert visible_rows(conn, "full")["recommendations"] == 7 * N_USERS
        for user, ranks, sources, distinct_movies in per_user:
            assert ranks == list(range(1, 8)), user
            assert sources == (["fallback"] if user in UNRATED_USERS else ["model"]), user
            assert distinct_movies == 7, user
        rated_and_recommended = _count(
            conn,
            "SELECT count(*) FROM {s}.recommendations r JOIN {s}.ratings USING (user_id, movie_id)"
            " WHERE r.version = 'full'",
        )
        assert rated_and_recommended == 0
        fallback_lists = {
            user: [m for u, _, m in recommendations(conn, "full") if u == user]
            for user in UNRATED_USERS
        }
        # Both unrated users get the same popularity list.
        assert fallback_lists[UNRATED_USERS[0]] == fallback_lists[UNRATED_USERS[1]]

        rated_users = set(_scalars(conn, "SELECT DISTINCT user_id FROM {s}.ratings"))
        embedded_users = _scalars(
            conn, "SELECT user_id FROM {s}.user_embeddings WHERE version = 'full'"
        )
        assert sorted(embedded_users) == sorted(rated_users)
        assert len(embedded_users) == stats["users_in_training"] == N_RATED_USERS
        rated_movies = set(_scalars(conn, "SELECT DISTINCT movie_id FROM {s}.ratings"))
        embedded_items = _scalars(
            conn, "SELECT movie_id FROM {s}.item_embeddings WHERE version = 'full'"
        )
        assert len(embedded_items) == len(set(embedded_items)) == stats["items_in_training"]
        assert set(embedded_items) <= rated_movies
        similar_per_item = _query(
            conn,
            "SELECT movie_id, array_agg(rank ORDER BY rank) FROM {s}.similar_items"
            " WHERE version = 'full' GROUP BY movie_id",
        ).all()
        assert sorted(m for m, _ in similar_per_item) == sorted(embedded_items)
        assert {tuple(ranks) for _, ranks in similar_per_item} == {(1, 2, 3, 4)}
        for table in ("user_embeddings", "item_embeddings"):
            lengths = _scalars(
                conn,
                f"SELECT DISTINCT array_length(embedding, 1) FROM {{s}}.{table}"
                " WHERE version = 'full'",
            )
            assert lengths == [16], table

        evaluation = conn.execute(
            sa.select(schema.evaluation_results).where(
                schema.evaluation_results.c.version == "full"
            )
        ).all()
        pairs = {(e.model, e.k) for e in evaluation}
        assert pairs == {(m, k) for m in ("lightgcn", "popularity", "gf-cf") for k in (5, 10)}
        for model, k in pairs:
            assert {e.metric for e in evaluation if (e.model, e.k) == (model, k)} >= METRICS
        assert all(e.users_counted > 0 and 0 <= e.value <= 1 for e in evaluation)

        history = conn.execute(
            sa.select(schema.training_history)
            .where(schema.training_history.c.version == "full")
            .order_by(schema.training_history.c.epoch)
        ).all()
        assert [h.epoch for h in history] == [1, 2, 3]
        assert all(math.isfinite(h.loss) and h.loss > 0 and h.seconds >= 0 for h in history)
        assert all(h.validation_metric == "ndcg@10" for h in history)
        assert all(0 <= h.validation_value <= 1 for h in history)

        assert row.status == "published"
        assert row.error is None
        assert row.published_at is not None and row.finished_at is not None
        assert row.code_version.startswith(recsys.__version__)
        expected = {
            "max_epochs": 3,
            "dim": 16,
            "n_layers": 2,
            "top_k": 7,
            "similar_k": 4,
            "eval_ks": [5, 10],
            "seed": 3,
            "learning_rate": 0.01,
            "val_ratio": 0.1,
            "split": "stratified",
        }
        assert {key: row.params.get(key) for key in expected} == expected
        ratings_total = _count(conn, "SELECT count(*) FROM {s}.ratings")
        assert stats["users"] == N_USERS
        assert stats["items"] == N_ITEMS
        assert stats["interactions"] == ratings_total
        assert stats["train_interactions"] + stats["test_interactions"] == ratings_total
        assert stats["fallback_users"] == len(UNRATED_USERS)
        assert set(row.phase_seconds) >= {"read", "split", "train", "evaluate", "similar", "score"}
        assert row.phase_seconds["gf-cf"] > 0
        # The filter's rank: the default's quarter of the smaller side of this small graph.
        assert stats["gf_cf"] == {"rank": stats["users_in_training"] // 4, "alpha": 0.3}
        assert stats["training_start"] == "spectral" and stats["training_start_seconds"] > 0
        assert row.phase_seconds["train"] > 0

        (attempt,) = run_rows(conn, "full")
        assert attempt.status == "succeeded"
        assert attempt.error is None and attempt.finished_at is not None
        assert not attempt.replacing
        assert attempt.pid == os.getpid()
        assert row.run_id == attempt.run_id


def test_existing_version_is_refused_and_replace_swaps_it_whole(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    assert cli(database_url, name, "--model-version", "swap", *FAST_OPTIONS).exit_code == 0
    with engine.connect() as conn:
        old_run = version_row(conn, "swap").run_id
        old_recommendations = recommendations(conn, "swap")

    refused = cli(database_url, name, "--model-version", "swap", *FAST_OPTIONS)
    assert refused.exit_code == 5
    assert "already published" in refused.stderr and "--replace" in refused.stderr
    with engine.connect() as conn:
        assert len(run_rows(conn, "swap")) == 1  # the refusal wrote nothing
        assert recommendations(conn, "swap") == old_recommendations

    replaced = cli(
        database_url, name, "--model-version", "swap", *FAST_OPTIONS, "--top-k", "4", "--replace"
    )
    assert replaced.exit_code == 0, replaced.output
    with engine.connect() as conn:
        row = version_row(conn, "swap")
        assert row.status == "published" and row.run_id != old_run
        assert row.params["top_k"] == 4
        new_recommendations = recommendations(conn, "swap")
        assert len(new_recommendations) == 4 * N_USERS
        assert len({(user, rank) for user, rank, _ in new_recommendations}) == 4 * N_USERS
        assert visible_rows(conn, "swap")["user_embeddings"] == N_RATED_USERS
        assert run_tables(conn, old_run) == []
        assert len(run_tables(conn, row.run_id)) == len(schema.OUTPUT_TABLES)
        assert stray_tables(conn) == []
        runs = run_rows(conn, "swap")
        assert [(r.status, r.replacing) for r in runs] == [
            ("succeeded", False),
            ("succeeded", True),
        ]


def test_a_second_run_of_a_held_version_stops_at_once(
    populated: Populated, database_url: URL
) -> None:
    """The claim is held throughout and only released afterwards, so a run that waited for it
    could only end by its lock timeout (exit 7, "database timeout"), never with exit 5. How long
    the refusal takes is printed by ``python bench/end_to_end.py``."""
    engine, name = populated
    claim = registry.acquire(engine, "busy", replace=False)
    try:
        blocked = cli(database_url, name, "--model-version", "busy", *FAST_OPTIONS)
    finally:
        claim.release()
    assert blocked.exit_code == VersionConflict.exit_code, blocked.output
    assert "'busy' is being written by another run" in blocked.stderr
    with engine.connect() as conn:
        assert version_row(conn, "busy") is None
        assert run_rows(conn, "busy") == []

    assert cli(database_url, name, "--model-version", "busy", *FAST_OPTIONS).exit_code == 0
    expect_published(engine, "busy")


def test_the_same_seed_gives_the_same_recommendations(populated: Populated) -> None:
    engine, _ = populated
    for version, seed in (("seed-a", 11), ("seed-b", 11), ("seed-c", 12)):
        run(engine, version, fast_config(seed=seed), report=quiet)
    with engine.connect() as conn:
        first, again, other = (recommendations(conn, v) for v in ("seed-a", "seed-b", "seed-c"))
    assert len(first) == 10 * N_USERS
    assert first == again
    assert first != other


def test_the_same_seed_gives_the_same_recommendations_whatever_the_row_order(
    engine: sa.Engine,
) -> None:
    populate(engine)
    run(engine, "before", fast_config(seed=11), report=quiet)
    with engine.begin() as conn:  # same values, but the rows move to the end of the heap
        ratings = schema.ratings
        conn.execute(
            sa.update(ratings).where(ratings.c.user_id == 1).values(rating=ratings.c.rating)
        )
    run(engine, "after", fast_config(seed=11), report=quiet)
    with engine.connect() as conn:
        assert recommendations(conn, "before") == recommendations(conn, "after")


BAD_OPTIONS = {
    "no epochs": (["--epochs", "0"], "epochs must be at least 1"),
    "top-k above the items": (
        ["--top-k", str(N_ITEMS + 1)],
        f"top-k {N_ITEMS + 1} is larger than the {N_ITEMS} items",
    ),
    "cut-off after the data": (
        ["--split", "temporal", "--cutoff", "2030-01-01"],
        "leaves an empty train or test set",
    ),
    "unknown split": (["--split", "random"], "Invalid value for '--split'"),
    "unknown config key": (["--config", "{config}"], "unknown keys learning_rat"),
    "spectral rank beyond the data": (
        ["--spectral-rank", "500"],
        "spectral rank 500 is more than this data supports",
    ),
    "baselines without popularity": (["--baselines", "gf-cf"], "expected popularity"),
    "a filter setting without the filter": (
        ["--baselines", "popularity", "--spectral-alpha", "1"],
        "--spectral-alpha set gf-cf, which --baselines leaves out",
    ),
}


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=list(BAD_OPTIONS))
def test_bad_options_fail_before_anything_is_written(
    populated: Populated, database_url: URL, tmp_path: Path, case: str
) -> None:
    engine, name = populated
    args, message = BAD_OPTIONS[case]
    config = tmp_path / "run.toml"
    config.write_text("epochs = 2\nlearning_rat = 0.01\n", encoding="utf-8")
    args = [arg.format(config=config) for arg in args]
    result = cli(database_url, name, "--model-version", "bad", *FAST_OPTIONS, *args)
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert message in result.stderr
    with engine.connect() as conn:
        assert version_row(conn, "bad") is None
        assert run_rows(conn, "bad") == []
        assert stray_tables(conn) == []


def test_a_hostile_version_name_is_rejected(populated: Populated, database_url: URL) -> None:
    engine, name = populated
    hostile = f"v1'; DROP TABLE {name}.ratings; --"
    result = cli(database_url, name, "--model-version", hostile, *FAST_OPTIONS)
    assert result.exit_code == InvalidInput.exit_code
    assert "is not allowed" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.ratings)).scalar() > 0
        assert version_row(conn, hostile) is None
        assert run_rows(conn, hostile) == []


SPLITS = {
    "stratified": (["--split", "stratified"], 0.23, 0.27),
    "temporal": (["--split", "temporal", "--test-ratio", "0.2"], 0.195, 0.22),
    "leave-last": (["--split", "leave-last"], None, None),
}


@pytest.mark.parametrize("split", SPLITS)
def test_each_split_publishes(populated: Populated, database_url: URL, split: str) -> None:
    engine, name = populated
    args, low, high = SPLITS[split]
    version = f"split-{split}"
    result = cli(database_url, name, "--model-version", version, *FAST_OPTIONS, *args)
    assert result.exit_code == 0, result.output
    expect_published(engine, version)
    with engine.connect() as conn:
        row = version_row(conn, version)
        stats = row.data_stats
        fallback = _count(
            conn,
            "SELECT count(DISTINCT user_id) FROM {s}.recommendations"
            " WHERE version = :v AND source = 'fallback'",
            v=version,
        )
        embedded = visible_rows(conn, version)["user_embeddings"]
    assert row.params["split"] == split
    assert stats["train_interactions"] + stats["test_interactions"] == stats["interactions"]
    if split == "leave-last":  # every rated user has at least five ratings: one goes to test
        assert stats["test_interactions"] == N_RATED_USERS
    else:
        assert low <= stats["test_interactions"] / stats["interactions"] <= high
    assert embedded == stats["users_in_training"]
    assert fallback == stats["fallback_users"] == N_USERS - stats["users_in_training"]


def test_min_rating_counts_only_high_ratings(populated: Populated, database_url: URL) -> None:
    engine, name = populated
    result = cli(database_url, name, "--model-version", "liked", *FAST_OPTIONS, "--min-rating", "4")
    assert result.exit_code == 0, result.output
    expect_published(engine, "liked")
    with engine.connect() as conn:
        stats = version_row(conn, "liked").data_stats
        total = _count(conn, "SELECT count(*) FROM {s}.ratings")
        liked = _count(conn, "SELECT count(*) FROM {s}.ratings WHERE rating >= 4")
        # Ratings below 4 are not interactions, but their movies are still never recommended.
        rated_and_recommended = _count(
            conn,
            "SELECT count(*) FROM {s}.recommendations r JOIN {s}.ratings USING (user_id, movie_id)"
            " WHERE r.version = 'liked'",
        )
    assert stats["interactions"] == liked < total
    assert stats["ratings_read"] == total
    assert rated_and_recommended == 0


def test_a_config_file_sets_defaults_that_options_override(
    populated: Populated, database_url: URL, tmp_path: Path
) -> None:
    engine, name = populated
    config = tmp_path / "run.toml"
    config.write_text(
        'epochs = 2\ndim = 8\nsplit = "leave-last"\neval-k = [5]\ntop_k = 6\n', encoding="utf-8"
    )
    result = cli(
        database_url, name, "--model-version", "from-file", "--config", str(config), "--dim", "12"
    )
    assert result.exit_code == 0, result.output
    expect_published(engine, "from-file", top_k=6)
    with engine.connect() as conn:
        params = version_row(conn, "from-file").params
        device = version_row(conn, "from-file").data_stats["training_device"]
        ks = _scalars(
            conn, "SELECT DISTINCT k FROM {s}.evaluation_results WHERE version = 'from-file'"
        )
        epochs = visible_rows(conn, "from-file")["training_history"]
    assert (params["max_epochs"], params["dim"], params["split"]) == (2, 12, "leave-last")
    assert params["eval_ks"] == [5] and ks == [5]
    assert epochs == 2
    # The device and, on the CPU, the kernel of the sparse products: printed and recorded.
    assert f"device: {device}\n" in result.stdout
    assert device.startswith("GPU") or device.endswith(csr_kernel().description)


def test_a_time_budget_sizes_the_schedule_and_the_registry_says_so(
    populated: Populated, database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget far shorter than the epochs asked for: training plans what fits, completes its
    learning-rate schedule (the last step's rate, as recorded, is a sliver of the initial one),
    and params, history and `show` record what the budget allowed."""
    engine, name = populated
    clock = SlowingClock(fast=0.04, slow=0.24)
    monkeypatch.setattr(pipeline, "fit", functools.partial(pipeline.fit, clock=clock))
    monkeypatch.setattr(recsys_jobs.run, "epoch_bars", lambda: clock.step)
    config = tmp_path / "budget.toml"
    # One negative, no trials: the fake clock moves with the model's steps, not the trials'.
    config.write_text(
        'max-train-time = "4s"\nsteps-per-epoch = 5\nnegatives = 1\n', encoding="utf-8"
    )
    options = ("--epochs", "100000", "--dim", "16", "--layers", "2", "--config", str(config))
    result = cli(database_url, name, "--model-version", "budget", *options)
    assert result.exit_code == 0, result.output
    assert "as many as the time budget allowed" in result.stdout
    expect_published(engine, "budget")
    with engine.connect() as conn:
        row = version_row(conn, "budget")
        history = conn.execute(
            sa.select(schema.training_history.c.epoch, schema.training_history.c.seconds)
            .where(schema.training_history.c.version == "budget")
            .order_by(schema.training_history.c.epoch)
        ).all()
    stats = row.data_stats
    assert row.params["max_train_seconds"] == 4.0 and row.params["steps_per_epoch"] == 5
    assert stats["training_budget_seconds"] == 4.0 and stats["training_budget_limited"] is True
    assert stats["training_steps_per_epoch"] == 5
    epochs, steps = stats["training_epochs"], stats["training_steps"]
    assert 1 <= epochs < 100000 and len(history) == epochs
    assert (epochs - 1) * 5 < steps <= epochs * 5  # only the last epoch may be cut short
    assert clock.steps == steps > 60  # it slowed mid-run
    assert stats["training_last_learning_rate"] < 0.01 * row.params["learning_rate"]
    assert clock.now <= 4.0  # the fake time training took
    url = database_url.render_as_string(hide_password=False)
    shown = CliRunner().invoke(main, ["--database-url", url, "--schema", name, "show", "budget"])
    assert "training_budget_limited" in shown.stdout and "max_train_seconds" in shown.stdout


def test_a_budget_without_epochs_lets_the_budget_size_them(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    options = ("--max-train-time", "3s", "--dim", "16", "--layers", "2")
    result = cli(database_url, name, "--model-version", "budget-only", *options)
    assert result.exit_code == 0, result.output
    assert "as many epochs as fit, budget 3 s" in result.stdout
    with engine.connect() as conn:
        row = version_row(conn, "budget-only")
    assert row.params["max_epochs"] is None and row.params["max_train_seconds"] == 3.0
    assert row.data_stats["training_budget_limited"] is True


def test_steps_per_epoch_sets_the_batch_from_the_data(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    result = cli(
        database_url, name, "--model-version", "steps", *FAST_OPTIONS, "--steps-per-epoch", "3"
    )
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        stats = version_row(conn, "steps").data_stats
    assert stats["training_steps_per_epoch"] == 3 and stats["training_steps"] == 9
    # The batch spreads the training interactions (users with a negative) over 3 steps.
    assert stats["training_batch_size"] == math.ceil(stats["train_interactions"] / 3)
    fixed = cli(database_url, name, "--model-version", "fixed", *FAST_OPTIONS, "--batch-size", "50")
    assert fixed.exit_code == 0, fixed.output
    with engine.connect() as conn:
        stats = version_row(conn, "fixed").data_stats
    assert stats["training_batch_size"] == 50
    assert stats["training_steps_per_epoch"] == math.ceil(stats["train_interactions"] / 50)


def test_l2_auto_chooses_the_weight_by_validation_and_show_says_which(
    populated: Populated, database_url: URL
) -> None:
    """``--l2 auto``: the trials' weights and validation figures are recorded, the chosen one is
    one of them, and ``run`` and ``show`` say which."""
    engine, name = populated
    args = ("--model-version", "l2-auto", *FAST_OPTIONS, "--l2", "auto", "--refit")
    result = cli(database_url, name, *args)
    assert result.exit_code == 0, result.output
    assert "l2 auto, " in result.stdout and "l2 auto: chose " in result.stdout
    with engine.connect() as conn:
        row = version_row(conn, "l2-auto")
    trials, chosen = row.data_stats["training_l2_trials"], row.data_stats["training_l2_chosen"]
    assert row.params["choose_l2"] is True and len(trials) >= 3
    assert chosen in [t["l2"] for t in trials] and all(t["users"] > 0 for t in trials)
    assert {t["epochs"] for t in trials} == {1}  # a quarter of 3 epochs, rounded up
    assert f"chose {chosen:.3g} by validation ndcg@10" in result.stdout
    url = database_url.render_as_string(hide_password=False)
    shown = CliRunner().invoke(main, ["--database-url", url, "--schema", name, "show", "l2-auto"])
    assert "training_l2_chosen" in shown.stdout and f"{chosen}" in shown.stdout
    refused = cli(database_url, name, "--model-version", "l2-bad", *FAST_OPTIONS, "--l2", "-1")
    assert refused.exit_code == 2 and "L2 weight not negative" in refused.output
    refused = cli(database_url, name, "--model-version", "l2-bad", *FAST_OPTIONS, "--l2", "some")
    assert refused.exit_code == 2 and "expected a number or auto, got 'some'" in refused.output


def test_negatives_are_chosen_by_validation_unless_given(
    populated: Populated, database_url: URL
) -> None:
    """By default the negative candidates are chosen by trials (1 and 4 at least), recorded and
    reported; ``--negatives N`` trains with N and no trials; 0 is refused."""
    engine, name = populated
    result = cli(database_url, name, "--model-version", "negatives-auto", *FAST_OPTIONS)
    assert result.exit_code == 0, result.output
    assert "negatives auto, " in result.stdout and "negatives auto: chose " in result.stdout
    assert "trial negatives 1: validation ndcg@10 " in result.stdout  # before the first epoch
    assert result.stdout.index("trial negatives 4:") < result.stdout.index("epoch   1:")
    given = cli(
        database_url, name, "--model-version", "negatives-4", *FAST_OPTIONS, "--negatives", "4"
    )
    assert given.exit_code == 0, given.output
    assert "negatives 4, " in given.stdout and "auto: chose" not in given.stdout
    with engine.connect() as conn:
        auto, four = version_row(conn, "negatives-auto"), version_row(conn, "negatives-4")
    trials = auto.data_stats["training_negatives_trials"]
    assert [t["negatives"] for t in trials][:2] == [1, 4] and all(t["users"] > 0 for t in trials)
    assert auto.data_stats["training_negatives_chosen"] in [t["negatives"] for t in trials]
    assert auto.params["choose_negatives"] is True
    assert (four.params["choose_negatives"], four.params["negative_candidates"]) == (False, 4)
    assert "training_negatives_chosen" not in four.data_stats
    refused = cli(
        database_url, name, "--model-version", "negatives-0", *FAST_OPTIONS, "--negatives", "0"
    )
    assert refused.exit_code == 2 and "expected a whole number of at least 1" in refused.output


def test_the_baselines_option_leaves_the_filter_out(
    populated: Populated, database_url: URL
) -> None:
    engine, name = populated
    args = ("--model-version", "popular-only", *FAST_OPTIONS, "--baselines", "popularity")
    result = cli(database_url, name, *args)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        row = version_row(conn, "popular-only")
        models = _scalars(
            conn,
            "SELECT DISTINCT model FROM {s}.evaluation_results WHERE version = 'popular-only'"
            " ORDER BY model",
        )
    assert models == ["lightgcn", "popularity"]
    assert "gf-cf" not in row.phase_seconds and "gf_cf" not in row.data_stats
    assert row.params["baselines"] == ["popularity"]


def test_a_model_the_filter_beats_is_told_so_and_the_view_measures_it(
    populated: Populated, database_url: URL
) -> None:
    """An untrained model (one epoch at a negligible rate, from noise) loses to GF-CF: the run
    says so, records where, and the view's lift over the strongest baseline is negative there."""
    engine, name = populated
    weak = ("--learning-rate", "1e-9", "--epochs", "1", "--no-spectral-start")
    result = cli(database_url, name, "--model-version", "weak", *FAST_OPTIONS, *weak)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        beaten = version_row(conn, "weak").data_stats["beaten_by"]
        figures = {
            (r.model, r.metric, r.k): r
            for r in _query(conn, "SELECT * FROM {s}.evaluation_vs_baseline WHERE version = 'weak'")
        }
    assert f"note: the gf-cf baseline beats LightGCN on {', '.join(beaten['gf-cf'])}" in (
        result.stderr + result.stdout
    )
    headline = {(m, k) for m in ("ndcg", "precision", "recall", "map") for k in (10, 20)}
    for metric, k in headline:
        model, gf_cf = figures["lightgcn", metric, k], figures["gf-cf", metric, k]
        strongest = max(gf_cf.value, model.baseline_value)
        assert model.strongest_baseline_value == pytest.approx(strongest)
        assert model.lift_over_strongest == pytest.approx(model.value - strongest)
        said = f"{metric}@{k}" in beaten["gf-cf"]
        assert said == (gf_cf.value > model.value), (metric, k)
    assert len(beaten["gf-cf"]) >= 4
