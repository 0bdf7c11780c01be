"""Similar items: written by every run, read through the views and ``recsys-job similar``.

The lists of a real run are recomputed here from the published item embeddings (cosine, the item
itself excluded); a hand-made embedding table checks ties, short lists and a zero vector.
"""

import json
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.scoring.outputs import write_similar_items
from recsys.storage import schema, sqlfiles
from recsys.versions import aliases
from recsys.versions.publish import RunTables
from tests.integration._published_versions import V1, V2, cli, publish_outputs, two_versions

#: The default --similar-k.
K = 10


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    with two_versions(database_url) as pair:
        yield pair


@pytest.fixture
def db(published: tuple[sa.Engine, str]) -> Iterator[tuple[sa.Engine, str]]:
    """The shared schema; aliases a test sets are removed afterwards."""
    yield published
    with published[0].begin() as conn:
        conn.execute(sa.delete(schema.version_aliases))
        aliases.pin_production(conn)  # views follow a hand edit once re-pinned


def _lists(conn: sa.Connection, version: str) -> dict[int, list[tuple[int, float]]]:
    """movie_id → [(similar_movie_id, score), ...] in rank order, ranks checked to run 1..n."""
    similar = schema.similar_items
    rows = conn.execute(
        sa.select(similar.c.movie_id, similar.c.rank, similar.c.similar_movie_id, similar.c.score)
        .where(similar.c.version == version)
        .order_by(similar.c.movie_id, similar.c.rank)
    )
    lists: dict[int, list[tuple[int, float]]] = {}
    for movie, rank, other, score in rows:
        found = lists.setdefault(movie, [])
        assert rank == len(found) + 1
        found.append((other, score))
    return lists


def _item_embeddings(conn: sa.Connection, version: str) -> tuple[np.ndarray, np.ndarray]:
    items = schema.item_embeddings
    rows = conn.execute(
        sa.select(items.c.movie_id, items.c.embedding)
        .where(items.c.version == version)
        .order_by(items.c.movie_id)
    ).all()
    return np.array([r.movie_id for r in rows]), np.array([r.embedding for r in rows], np.float64)


@pytest.mark.parametrize("version", (V1, V2))
def test_each_learnt_item_lists_its_nearest_items_by_cosine(
    db: tuple[sa.Engine, str], version: str
) -> None:
    with db[0].connect() as conn:
        ids, embeddings = _item_embeddings(conn, version)
        lists = _lists(conn, version)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = unit @ unit.T
    position = {movie: i for i, movie in enumerate(ids)}
    assert sorted(lists) == sorted(ids)  # every item the model learnt, and only those
    for movie, found in lists.items():
        row = cosine[position[movie]]
        listed = [position[other] for other, _ in found]
        scores = np.array([score for _, score in found])
        assert len(found) == K and position[movie] not in listed
        assert len(set(listed)) == K
        np.testing.assert_allclose(scores, row[listed], atol=1e-5)
        assert np.all(np.diff(scores) <= 1e-6)  # best first
        others = np.delete(row, [position[movie], *listed])
        assert scores[-1] >= others.max() - 1e-5  # nothing left out scores higher


def test_hand_computed_lists_with_ties_short_lists_and_a_zero_vector(engine: sa.Engine) -> None:
    """Movies 1-4 (publish_outputs' catalogue): 2 points the same way as 1 (cosine 1 although
    twice as long), 3 is orthogonal to both, 4 has a zero embedding (cosine 0 with all). With
    k = 5 and three other movies, every list has three rows; ties go to the lower movie id."""
    ids = np.array([1, 2, 3, 4])
    embeddings = np.array([[1, 0], [2, 0], [0, 3], [0, 0]], np.float32)

    def write(tables: RunTables) -> None:
        assert write_similar_items(tables, ids, embeddings, 5) == 12

    publish_outputs(engine, "hand", write_similar=write)
    with engine.connect() as conn:
        lists = _lists(conn, "hand")
    assert lists == {
        1: [(2, pytest.approx(1.0)), (3, 0.0), (4, 0.0)],
        2: [(1, pytest.approx(1.0)), (3, 0.0), (4, 0.0)],
        3: [(1, 0.0), (2, 0.0), (4, 0.0)],
        4: [(1, 0.0), (2, 0.0), (3, 0.0)],
    }


def _view(conn: sa.Connection, query: str, **params: object) -> list[sa.Row]:
    sqlfiles.use_schema(conn)
    return conn.execute(sa.text(query), params).all()


def test_production_similar_items_follow_the_alias_with_titles(db: tuple[sa.Engine, str]) -> None:
    engine = db[0]
    query = (
        "SELECT version, movie_id, title, rank, similar_movie_id, similar_title, score"
        " FROM production_similar_items ORDER BY movie_id, rank"
    )
    with engine.connect() as conn:
        titles = dict(
            conn.execute(sa.select(schema.movies.c.movie_id, schema.movies.c.title)).all()
        )
        served = _view(conn, query)
        stored = _lists(conn, V2)
    assert {r.version for r in served} == {V2}  # no alias set: the latest published
    assert [(r.similar_movie_id, r.score) for r in served] == [
        pair for movie in sorted(stored) for pair in stored[movie]
    ]
    assert all(r.title == titles[r.movie_id] for r in served)
    assert all(r.similar_title == titles[r.similar_movie_id] for r in served)

    aliases.promote(engine, V1)
    aliases.promote(engine, V2, "staging")  # another alias, which the view must not show
    with engine.connect() as conn:
        assert {r.version for r in _view(conn, query)} == {V1}


def test_views_never_show_an_unpublished_versions_similar_items(db: tuple[sa.Engine, str]) -> None:
    with db[0].connect() as conn:
        conn.execute(
            sa.update(schema.model_versions)
            .where(schema.model_versions.c.name == V2)
            .values(status="failed")
        )
        for view in ("published_similar_items", "production_similar_items"):
            shown = _view(conn, f"SELECT DISTINCT version FROM {view}")
            assert [r.version for r in shown] == [V1], view
        conn.rollback()


def _movie_with_list(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return min(_lists(conn, V2))


def test_similar_command_defaults_to_production(db: tuple[sa.Engine, str], database_url) -> None:
    engine, name = db
    movie = _movie_with_list(engine)
    with engine.connect() as conn:
        stored = _lists(conn, V2)[movie]
        title = conn.execute(
            sa.select(schema.movies.c.title).where(schema.movies.c.movie_id == movie)
        ).scalar_one()

    shown = cli(database_url, name, "similar", "--movie", str(movie))
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        f"movie {movie} ({title}), version {V2} (alias production not set: latest published)"
    )
    assert lines[1].split() == ["rank", "title", "genres", "score"]
    assert len(lines) == 2 + K

    found = cli(database_url, name, "similar", "--movie", str(movie), "--json")
    assert found.exit_code == 0, found.output
    listed = json.loads(found.stdout)
    assert (listed["movie_id"], listed["title"], listed["version"]) == (movie, title, V2)
    assert (listed["alias"], listed["resolved_by"]) == ("production", "latest published")
    assert [(r["movie_id"], r["score"]) for r in listed["items"]] == [
        (other, pytest.approx(score)) for other, score in stored
    ]
    assert [r["rank"] for r in listed["items"]] == list(range(1, K + 1))
    assert all(r["title"] for r in listed["items"])


def test_similar_command_by_version_and_alias(db: tuple[sa.Engine, str], database_url) -> None:
    engine, name = db
    movie = _movie_with_list(engine)
    with engine.connect() as conn:
        expected = [other for other, _ in _lists(conn, V1)[movie]]

    by_version = cli(database_url, name, "similar", "--movie", str(movie), "--version", V1)
    assert by_version.exit_code == 0 and f", version {V1}\n" in by_version.stdout

    aliases.promote(engine, V1, "staging")
    by_alias = cli(
        database_url, name, "similar", "--movie", str(movie), "--alias", "staging", "--json"
    )
    assert by_alias.exit_code == 0, by_alias.output
    listed = json.loads(by_alias.stdout)
    assert (listed["version"], listed["alias"], listed["resolved_by"]) == (V1, "staging", "alias")
    assert [r["movie_id"] for r in listed["items"]] == expected


def test_similar_command_errors(db: tuple[sa.Engine, str], database_url) -> None:
    _engine, name = db
    unknown = cli(database_url, name, "similar", "--movie", "123456")
    assert unknown.exit_code == 1
    assert f"movie 123456 has no similar items in version '{V2}'" in unknown.stderr
    unset = cli(database_url, name, "similar", "--movie", "1", "--alias", "staging")
    assert unset.exit_code == 1 and "alias 'staging' is not set" in unset.stderr
    missing = cli(database_url, name, "similar", "--movie", "1", "--version", "v9")
    assert missing.exit_code == 1 and "no version 'v9'" in missing.stderr
    both = cli(database_url, name, "similar", "--movie", "1", "--version", V1, "--alias", "x")
    assert both.exit_code == 2 and "not both" in both.stderr
