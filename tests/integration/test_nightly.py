"""Running every night against a real PostgreSQL: warm start, the champion scored on the same test
set, the promotion gate, and the refit, with every refusal.

One schema holds the synthetic ratings and ``v1``, trained under a temporal split at ``CUT_A``;
a run at ``CUT_B`` (later) may use it, a run at ``EARLY`` (before what v1 learnt) may not. Tests
write versions of their own names and move aliases of their own, so they do not see each other.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.errors import PUBLISHED_NOT_PROMOTED, InvalidInput
from recsys.evaluation.metrics import METRICS
from recsys.faults import ENV, InjectedFault
from recsys.model.settings import WARM_START_LEARNING_RATE, TrainConfig
from recsys.pipeline import run
from recsys.run_config import RunConfig
from recsys.storage import schema
from recsys.versions import aliases
from recsys.versions.listing import compare
from recsys.versions.promotion import Gate, Judging
from tests.integration._published_versions import cli as recsys_job
from tests.integration._published_versions import publish_outputs
from tests.integration._ranking import embeddings, figures, ranking
from tests.integration._run_data import (
    FAST_OPTIONS,
    UNRATED_USERS,
    cli,
    fast_config,
    populated_schema,
    quiet,
    stray_tables,
    version_row,
)

KS = (10, 20)
NEW_MOVIE = 99_999
#: Options of a model that does not learn: it ranks by its random initial embeddings.
UNTRAINED = ("--learning-rate", "1e-12", "--epochs", "1")


@dataclass(frozen=True)
class Nightly:
    engine: sa.Engine
    schema: str
    #: v1's cut-off, a later one and one before the end of what v1 learnt from.
    cut_a: datetime
    cut_b: datetime
    early: datetime


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _cut(times: list[datetime], share: float) -> datetime:
    """Half a second before the rating at ``share`` of the times (ratings are at whole
    seconds, so none sits on the cut-off); whole seconds, as --cutoff takes them, rounded up."""
    moment = times[round(len(times) * share)] - timedelta(milliseconds=500)
    return moment.replace(microsecond=0) + timedelta(seconds=1)


@pytest.fixture(scope="module")
def nightly(database_url: URL) -> Iterator[Nightly]:
    with populated_schema(database_url) as (engine, name):
        with engine.connect() as conn:
            times = sorted(conn.execute(sa.select(schema.ratings.c.rated_at)).scalars())
        cut_a, cut_b, early = _cut(times, 0.6), _cut(times, 0.8), _cut(times, 0.4)
        _add_new_movie(engine, cut_a + (cut_b - cut_a) / 2, times[-1] + timedelta(days=1))
        config = fast_config(seed=1, split="temporal", cutoff=cut_a)
        run(engine, "v1", config, report=quiet)
        yield Nightly(engine, name, cut_a, cut_b, early)


def _add_new_movie(engine: sa.Engine, learnt_at: datetime, tested_at: datetime) -> None:
    """A movie first rated after v1's cut-off: a later run learns it (rated before ``CUT_B``)
    and has it as a test item (rated after), which v1 cannot rank."""
    ratings = schema.ratings
    with engine.begin() as conn:
        users = (
            conn.execute(
                sa.select(ratings.c.user_id).group_by(ratings.c.user_id).order_by(ratings.c.user_id)
            )
            .scalars()
            .all()
        )
        conn.execute(sa.insert(schema.movies).values(movie_id=NEW_MOVIE, title="New (2024)"))
        rows = [(u, learnt_at) for u in users[:4]] + [(u, tested_at) for u in users[4:10]]
        conn.execute(
            sa.insert(ratings),
            [{"user_id": u, "movie_id": NEW_MOVIE, "rating": 5, "rated_at": at} for u, at in rows],
        )


def _run(
    nightly: Nightly, database_url: URL, version: str, *args: str, cut: datetime | None = None
):
    """``recsys-job run`` of ``version`` with the fast options (temporal at ``cut``, if given)."""
    split = ("--split", "temporal", "--cutoff", _iso(cut)) if cut else ()
    return cli(
        database_url, nightly.schema, "--model-version", version, *FAST_OPTIONS, *split, *args
    )


def _stats(nightly: Nightly, version: str) -> dict:
    with nightly.engine.connect() as conn:
        return version_row(conn, version).data_stats


def _layer0(conn: sa.Connection, table: sa.Table, version: str) -> dict[int, np.ndarray]:
    key = table.c.user_id if "user_id" in table.c else table.c.movie_id
    rows = conn.execute(sa.select(key, table.c.layer0).where(table.c.version == version))
    return {row[0]: np.array(row[1], dtype=np.float32) for row in rows}


def _nothing_written(nightly: Nightly, version: str) -> None:
    with nightly.engine.connect() as conn:
        assert version_row(conn, version) is None
        assert stray_tables(conn) == []


# --- what every version records ------------------------------------------------------------


def test_a_version_records_what_it_learnt_from_and_its_layer0_rows(nightly: Nightly) -> None:
    stats = _stats(nightly, "v1")
    with nightly.engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(schema.ratings.c.rated_at)).where(
                schema.ratings.c.rated_at < nightly.cut_a
            )
        ).scalar_one()
        users = _layer0(conn, schema.user_embeddings, "v1")
        items = _layer0(conn, schema.item_embeddings, "v1")
        final = embeddings(conn, schema.user_embeddings, "v1")
    assert datetime.fromisoformat(stats["trained_until"]) == last
    assert stats["trained_untimed"] == 0
    assert set(users) == set(final) and len(items) == stats["items_in_training"]
    assert {row.shape for row in users.values()} == {(fast_config().train.dim,)}
    # The layer-0 rows are the trainable state, not the propagated embeddings beside them.
    some = next(iter(users))
    assert not np.allclose(users[some], final[some])


# --- warm start ----------------------------------------------------------------------------


def test_warm_start_carries_the_layer0_rows_of_persisting_ids(nightly: Nightly) -> None:
    """With a learning rate too small to move anything, the new version's layer-0 rows are where
    it started: v1's rows for the users and items v1 knew, fresh ones for the others."""
    config = fast_config(seed=2, split="temporal", cutoff=nightly.cut_b, warm_start="v1")
    config = replace(config, train=replace(config.train, learning_rate=1e-12, max_epochs=1))
    lines: list[str] = []
    run(nightly.engine, "warm", config, report=lines.append)
    with nightly.engine.connect() as conn:
        before = {
            t.name: _layer0(conn, t, "v1") for t in (schema.user_embeddings, schema.item_embeddings)
        }
        after = {
            t.name: _layer0(conn, t, "warm")
            for t in (schema.user_embeddings, schema.item_embeddings)
        }
    carried = _stats(nightly, "warm")["warm_start"]
    for table, count in (
        ("user_embeddings", "users_carried"),
        ("item_embeddings", "items_carried"),
    ):
        shared = set(before[table]) & set(after[table])
        new = set(after[table]) - set(before[table])
        assert shared and new, table  # v2 at a later cut-off knows more users and items
        assert carried[count] == len(shared)
        for key in shared:
            np.testing.assert_allclose(after[table][key], before[table][key], atol=1e-6)
        for key in new:
            assert not any(np.allclose(after[table][key], row) for row in before[table].values())
    assert carried["version"] == "v1"
    assert any(line.startswith("warm start from v1:") for line in lines)


def _layer0_of(conn: sa.Connection, version: str) -> dict[str, dict[int, np.ndarray]]:
    """Both tables' layer-0 rows of ``version``, by table name."""
    return {
        t.name: _layer0(conn, t, version) for t in (schema.user_embeddings, schema.item_embeddings)
    }


def _starts_from(engine: sa.Engine, version: str, source: str) -> None:
    """``version`` (trained at a rate too small to move anything) published, for every user and
    item ``source`` knew, ``source``'s layer-0 row: it started there."""
    with engine.connect() as conn:
        before, after = _layer0_of(conn, source), _layer0_of(conn, version)
    for table in before:
        shared = set(before[table]) & set(after[table])
        assert len(shared) > 0.5 * len(before[table]), table
        for key in shared:
            np.testing.assert_allclose(after[table][key], before[table][key], atol=1e-6)


def _untrained(config: RunConfig) -> RunConfig:
    """``config`` at a learning rate too small to move anything, for one epoch."""
    return replace(config, train=replace(config.train, learning_rate=1e-12, max_epochs=1))


def test_a_refit_with_a_warm_start_starts_from_the_earlier_rows(nightly: Nightly) -> None:
    """docs/nightly.md: with ``--refit``, both trainings start from ``V``: the published model is
    the refit's, so its layer-0 rows are ``V``'s where ``V`` knew the id."""
    config = fast_config(seed=3, split="temporal", cutoff=nightly.cut_b, warm_start="v1")
    run(nightly.engine, "refit-warm", _untrained(replace(config, refit=True)), report=quiet)
    stats = _stats(nightly, "refit-warm")
    assert stats["refit"] is True and stats["warm_start"]["version"] == "v1"
    _starts_from(nightly.engine, "refit-warm", "v1")


def test_the_next_night_warm_starts_from_a_refit_and_from_production(
    database_url: URL,
) -> None:
    """Night 1 publishes a refit on every rating it has and moves ``production`` to it; newer
    ratings arrive; night 2 warm-starts from the refit by name, and from ``production``."""
    with populated_schema(database_url) as (engine, _):
        ratings = schema.ratings
        with engine.connect() as conn:
            times = sorted(conn.execute(sa.select(ratings.c.rated_at)).scalars())
        night_1, night_2 = _cut(times, 0.8), _cut(times, 0.9)
        with engine.begin() as conn:  # the ratings of after night 1 are held back until then
            later = conn.execute(
                sa.delete(ratings).where(ratings.c.rated_at > night_1).returning(*ratings.c)
            ).all()
        config = fast_config(seed=4, split="temporal", cutoff=_cut(times, 0.6), refit=True)
        run(engine, "night-1", config, report=quiet)
        aliases.promote(engine, "night-1")
        with engine.begin() as conn:
            conn.execute(sa.insert(ratings), [row._asdict() for row in later])
        for name, source in (("from-refit", "night-1"), ("from-production", aliases.DEFAULT_ALIAS)):
            config = fast_config(seed=5, split="temporal", cutoff=night_2, warm_start=source)
            run(engine, name, _untrained(config), report=quiet)
            with engine.connect() as conn:
                stats = version_row(conn, name).data_stats
            assert stats["warm_start"]["version"] == "night-1", name
            _starts_from(engine, name, "night-1")


def test_a_warm_start_takes_its_own_learning_rate_unless_one_is_given(
    nightly: Nightly, database_url: URL
) -> None:
    for name, more, rate in (
        ("warm-rate-default", (), WARM_START_LEARNING_RATE),
        ("warm-rate-given", ("--learning-rate", "0.2"), 0.2),
    ):
        result = _run(nightly, database_url, name, "--warm-start", "v1", *more, cut=nightly.cut_b)
        assert result.exit_code == 0, result.output
        assert f"lr {rate:g}," in result.output
        with nightly.engine.connect() as conn:
            assert version_row(conn, name).params["learning_rate"] == rate
    cold_rate = TrainConfig().learning_rate
    assert cold_rate != WARM_START_LEARNING_RATE
    result = _run(nightly, database_url, "cold-rate", cut=nightly.cut_b)
    assert result.exit_code == 0, result.output
    with nightly.engine.connect() as conn:
        assert version_row(conn, "cold-rate").params["learning_rate"] == cold_rate


@pytest.fixture(scope="module")
def sources(nightly: Nightly) -> Nightly:
    """Versions a warm start must refuse: a failed one, one published the way versions were
    before they recorded what they learnt from, and a refit (it learnt from every rating)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, "training")
        with pytest.raises(InjectedFault):
            run(nightly.engine, "failed-one", fast_config(), report=quiet)
    publish_outputs(nightly.engine, "old-one")
    run(nightly.engine, "refitted", fast_config(refit=True), report=quiet)
    return nightly


#: case: (source, cut-off: "b", "early" or None for the default stratified split, more options,
#: what the message says)
REFUSED_WARM_STARTS = {
    "stratified": ("v1", None, (), "stratified split) are not later than that"),
    "leave-last": ("v1", None, ("--split", "leave-last"), "leave-last split"),
    "cut-off too early": ("v1", "early", (), "use a cut-off after"),
    "unknown": ("nope", "b", (), "--warm-start 'nope': no alias or version of that name"),
    "not published": ("failed-one", "b", (), "'failed-one' is failed, not published"),
    "no record": ("old-one", "b", (), "published before recsys recorded what a version learnt"),
    "refit on all": ("refitted", "b", (), "are not later than that"),
    "other size": ("v1", "b", ("--dim", "8"), "has embeddings of size 16, this run 8"),
}


@pytest.mark.parametrize("case", REFUSED_WARM_STARTS, ids=list(REFUSED_WARM_STARTS))
def test_warm_start_is_refused_with_the_reason_and_nothing_written(
    sources: Nightly, database_url: URL, case: str
) -> None:
    source, cut, more, message = REFUSED_WARM_STARTS[case]
    cutoff = {"b": sources.cut_b, "early": sources.early, None: None}[cut]
    name = f"refused-{case.replace(' ', '-')}"
    result = _run(sources, database_url, name, "--warm-start", source, *more, cut=cutoff)
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert message in result.stderr
    _nothing_written(sources, name)


# --- the champion --------------------------------------------------------------------------


def _champion_recomputed(conn: sa.Connection, version: str, champion: str, cut: datetime) -> dict:
    """The champion's figures on ``version``'s test set, by this file's own code: the users and
    test items ``version`` evaluates, ranked by the champion's stored embeddings over the
    candidates it knows, without ``version``'s training items; users it does not know have no
    hits but are counted."""
    train, test = defaultdict(set), defaultdict(set)
    ratings = schema.ratings
    for user, movie, rated_at in conn.execute(
        sa.select(ratings.c.user_id, ratings.c.movie_id, ratings.c.rated_at)
    ):
        (test if rated_at >= cut else train)[user].add(movie)
    users = embeddings(conn, schema.user_embeddings, version)
    items = embeddings(conn, schema.item_embeddings, version)
    their_users = embeddings(conn, schema.user_embeddings, champion)
    their_items = {
        m: v for m, v in embeddings(conn, schema.item_embeddings, champion).items() if m in items
    }
    per_user = defaultdict(list)
    for user, movies in test.items():
        relevant = movies & set(items)
        if user not in users or not relevant:
            continue
        ranked: list[int] = []
        if user in their_users:
            scores = {m: float(their_users[user] @ v) for m, v in their_items.items()}
            ranked = ranking(scores, train[user])
        for k in KS:
            for metric, value in figures(ranked, relevant, k).items():
                per_user[metric, k].append(value)
    return {key: float(np.mean(values)) for key, values in per_user.items()}


def test_the_champion_is_scored_on_the_same_users_and_items(
    nightly: Nightly, database_url: URL
) -> None:
    result = _run(nightly, database_url, "challenger", "--compare-with", "v1", cut=nightly.cut_b)
    assert result.exit_code == 0, result.output
    assert "champion v1 (v1) scored on the same test set" in result.stdout
    results = schema.evaluation_results
    with nightly.engine.connect() as conn:
        rows = conn.execute(sa.select(results).where(results.c.version == "challenger")).all()
        expected = _champion_recomputed(conn, "challenger", "v1", nightly.cut_b)
        deltas = compare(conn, "v1", "challenger").metrics
        items = embeddings(conn, schema.item_embeddings, "challenger")
    champion_stats = _stats(nightly, "challenger")["champion"]
    assert NEW_MOVIE in items
    assert {r.model for r in rows} == {"lightgcn", "popularity", "gf-cf", "champion"}
    assert champion_stats["items_known"] == len(items) - 1  # all but the new movie
    assert len({r.users_counted for r in rows}) == 1  # the same users for all three
    stored = {(r.metric, r.k): r.value for r in rows if r.model == "champion"}
    assert stored == pytest.approx(expected, rel=1e-6)
    assert stored != {(r.metric, r.k): r.value for r in rows if r.model == "lightgcn"}
    assert champion_stats["version"] == "v1" and champion_stats["users_known"] > 0
    # compare and the headline stay about each version's own model.
    assert len(deltas) == len(METRICS) * len(KS)


def test_an_unfair_champion_is_skipped_with_the_reason(nightly: Nightly, database_url: URL) -> None:
    result = _run(nightly, database_url, "unfair", "--compare-with", "v1")  # stratified
    assert result.exit_code == 0, result.output
    assert "champion v1 not scored: version 'v1' learnt from interactions up to" in result.stdout
    results = schema.evaluation_results
    with nightly.engine.connect() as conn:
        models = conn.execute(
            sa.select(results.c.model).distinct().where(results.c.version == "unfair")
        ).scalars()
        assert set(models) == {"lightgcn", "popularity", "gf-cf"}
    skipped = _stats(nightly, "unfair")["champion"]
    assert skipped["version"] == "v1" and "stratified split" in skipped["skipped"]
    shown = recsys_job(database_url, nightly.schema, "show", "unfair")
    assert "champion: v1 as v1 (not scored: version 'v1' learnt" in shown.stdout


def test_an_unknown_champion_is_refused(nightly: Nightly, database_url: URL) -> None:
    result = _run(nightly, database_url, "no-champion", "--compare-with", "nightly-none")
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert "--compare-with 'nightly-none': no alias or version of that name" in result.stderr
    _nothing_written(nightly, "no-champion")


# --- the promotion gate --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--promote", "gate-x", "--if-better", "auc@10"), "metric 'auc' is not computed"),
        (("--promote", "gate-x", "--if-better", "ndcg@5"), "k 5 is not an evaluation cut-off"),
        (("--promote", "gate-x", "--if-better", "ndcg@10:-1"), "tolerance of at least 0"),
        (("--promote", "gate-x"), "give --promote ALIAS with --if-better"),
        (("--if-better", "ndcg@10"), "give --promote ALIAS with --if-better"),
    ],
)
def test_a_gate_it_cannot_apply_is_refused_before_training(
    nightly: Nightly, database_url: URL, args: tuple[str, ...], message: str
) -> None:
    result = _run(nightly, database_url, "bad-gate", *args)
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert message in result.stderr
    _nothing_written(nightly, "bad-gate")


def _history(nightly: Nightly, alias: str) -> list[sa.Row]:
    with nightly.engine.connect() as conn:
        return conn.execute(
            sa.text(
                f'SELECT version, previous_version, note FROM "{nightly.schema}".alias_history '
                "WHERE alias = :alias ORDER BY valid_from"
            ),
            {"alias": alias},
        ).all()


def test_the_gate_promotes_only_a_better_version_and_says_so_everywhere(
    nightly: Nightly, database_url: URL
) -> None:
    gate = ("--promote", "gate-a", "--if-better", "ndcg@10")
    # A first night: the alias points at nothing, so there is nothing to beat.
    first = _run(nightly, database_url, "gate-1", *gate, cut=nightly.cut_a)
    assert first.exit_code == 0, first.output
    assert "promoted to gate-a: alias 'gate-a' points at no version yet" in first.stdout

    # A better model (trained) against one that did not learn (a vanishing learning rate).
    weak = _run(nightly, database_url, "gate-weak", *UNTRAINED, cut=nightly.cut_b)
    assert weak.exit_code == 0, weak.output
    with nightly.engine.begin() as conn:
        aliases.move(conn, "gate-weak", "gate-a")

    better = _run(nightly, database_url, "gate-2", *gate, "--json", cut=nightly.cut_b)
    assert better.exit_code == 0, better.output
    outcome = json.loads(better.stdout)["promotion"]
    assert outcome["promoted"] and outcome["champion"] == "gate-weak"
    assert outcome["value"] > outcome["champion_value"]
    assert outcome == _stats(nightly, "gate-2")["promotion"]
    figures_stored = {
        (r["model"], r["metric"], r["k"]): r["value"]
        for r in json.loads(better.stdout)["evaluation"]
    }
    assert outcome["champion_value"] == figures_stored["champion", "ndcg", 10]
    assert outcome["value"] == figures_stored["lightgcn", "ndcg", 10]

    # The weak one again, now against gate-2: published, not promoted, exit 8.
    again = _run(nightly, database_url, "gate-3", *UNTRAINED, *gate, cut=nightly.cut_b)
    assert again.exit_code == PUBLISHED_NOT_PROMOTED, again.output
    assert "published gate-3" in again.stdout
    assert "not promoted to gate-a: ndcg@10" in again.stdout
    refused = _stats(nightly, "gate-3")["promotion"]
    assert not refused["promoted"] and refused["champion"] == "gate-2"
    assert refused["value"] < refused["champion_value"]

    history = _history(nightly, "gate-a")
    assert [(h.previous_version, h.version) for h in history] == [
        (None, "gate-1"),
        ("gate-1", "gate-weak"),
        ("gate-weak", "gate-2"),
    ]
    assert "nothing to beat" in history[0].note and history[1].note is None
    assert (
        f"{outcome['value']:.4f} beats champion gate-weak's {outcome['champion_value']:.4f}"
        in history[2].note
    )


def test_without_a_fair_comparison_the_gate_does_not_promote(
    nightly: Nightly, database_url: URL
) -> None:
    with nightly.engine.begin() as conn:
        aliases.move(conn, "v1", "gate-b")
    result = _run(
        nightly, database_url, "gate-unfair", "--promote", "gate-b", "--if-better", "ndcg@10"
    )
    assert result.exit_code == PUBLISHED_NOT_PROMOTED, result.output
    assert "not promoted to gate-b: not compared with 'v1'" in result.stdout
    assert [h.version for h in _history(nightly, "gate-b")] == ["v1"]
    assert _stats(nightly, "gate-unfair")["promotion"]["champion_value"] is None


def test_an_alias_moved_during_the_run_is_not_moved_again(nightly: Nightly) -> None:
    """The gate compares and swaps: the alias moved while the run trained, so the comparison
    was with a version the alias no longer names, and the run leaves the alias alone."""
    with nightly.engine.begin() as conn:
        aliases.move(conn, "v1", "gate-c")

    def meanwhile(line: str) -> None:
        if line.startswith("best epoch"):
            aliases.promote(nightly.engine, "challenger-base", "gate-c")

    run(
        nightly.engine,
        "challenger-base",
        fast_config(seed=4, split="temporal", cutoff=nightly.cut_a),
        report=quiet,
    )
    config = fast_config(seed=3, split="temporal", cutoff=nightly.cut_b)
    judging = Judging("gate-c", gate=Gate("gate-c", "ndcg", 10, tolerance=1.0))
    result = run(nightly.engine, "gate-raced", config, report=meanwhile, judging=judging)
    assert result.promotion is not None and not result.promotion.promoted
    assert "was moved to 'challenger-base' during the run" in result.promotion.reason
    assert [h.version for h in _history(nightly, "gate-c")] == ["v1", "challenger-base"]
    assert _stats(nightly, "gate-raced")["promotion"]["promoted"] is False


# --- refit ---------------------------------------------------------------------------------


def test_a_refit_publishes_from_every_interaction_and_keeps_the_held_out_evaluation(
    nightly: Nightly, database_url: URL
) -> None:
    same = ("--seed", "6", "--compare-with", "v1")  # the same champion for both
    held = _run(nightly, database_url, "held", *same, cut=nightly.cut_b)
    refit = _run(nightly, database_url, "refit", *same, "--refit", cut=nightly.cut_b)
    assert held.exit_code == 0 and refit.exit_code == 0, refit.output
    results, recs = schema.evaluation_results, schema.recommendations
    with nightly.engine.connect() as conn:
        figures_of = {
            version: {
                (r.model, r.metric, r.k): r.value
                for r in conn.execute(sa.select(results).where(results.c.version == version))
            }
            for version in ("held", "refit")
        }
        rated = set(conn.execute(sa.select(schema.ratings.c.user_id).distinct()).scalars())
        last = conn.execute(sa.select(sa.func.max(schema.ratings.c.rated_at))).scalar_one()
        interactions = conn.execute(
            sa.select(sa.func.count()).select_from(schema.ratings)
        ).scalar_one()
        users = embeddings(conn, schema.user_embeddings, "refit")
        fallback = set(
            conn.execute(
                sa.select(recs.c.user_id)
                .distinct()
                .where(recs.c.version == "refit", recs.c.source == "fallback")
            ).scalars()
        )
        held_users = embeddings(conn, schema.user_embeddings, "held")
    # The evaluation is the held-out model's, the same as the run without a refit.
    assert figures_of["refit"] == pytest.approx(figures_of["held"], rel=1e-9)
    # The published model learnt every user with an interaction; only users without one fall back.
    assert set(users) == rated and len(held_users) < len(rated)
    assert fallback == set(UNRATED_USERS)
    stats = _stats(nightly, "refit")
    assert stats["refit"] is True and stats["refit_interactions"] == interactions
    assert datetime.fromisoformat(stats["trained_until"]) == last
    shown = recsys_job(database_url, nightly.schema, "show", "refit")
    assert f"published lists: refit on all {interactions:,} interactions" in shown.stdout
    assert "refit" not in _stats(nightly, "held")
