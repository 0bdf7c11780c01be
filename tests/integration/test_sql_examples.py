"""Every example query in ``sql/examples/`` against two published versions, and the README.

Each file runs as the CLI runs it (psql variables bound through SQLAlchemy) and, where psql is
installed, exactly as ``sql/README.md`` tells analysts to run it.
"""

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.storage import schema, sqlfiles
from tests.integration._published_versions import TOP_K, V1, V2, overlap, two_versions
from tests.integration._run_data import N_USERS, UNRATED_USERS

SQL = Path(__file__).resolve().parents[2] / "sql"
USER = 3
MOVIE = 1


@pytest.fixture(scope="module")
def published(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    with two_versions(database_url) as pair:
        yield pair


def _run(engine: sa.Engine, name: str, **params: object) -> list[sa.Row]:
    with engine.connect() as conn:
        sqlfiles.use_schema(conn)
        return conn.execute(sqlfiles.query(name), params).all()


def check_top_n_for_user(engine: sa.Engine) -> None:
    rows = _run(engine, "top_n_for_user", user_id=USER, n=3, alias="production")
    assert [r.rank for r in rows] == [1, 2, 3]
    assert {r.version for r in rows} == {V2}  # no alias set: the latest published
    assert all(r.title for r in rows)


def check_rated_vs_recommended(engine: sa.Engine) -> None:
    rows = _run(engine, "rated_vs_recommended", user_id=USER, n=TOP_K + 5, alias="production")
    with engine.connect() as conn:
        ratings = conn.execute(
            sa.select(sa.func.count()).where(schema.ratings.c.user_id == USER)
        ).scalar_one()
    assert [r.position for r in rows] == list(range(1, min(ratings, TOP_K + 5) + 1))
    rated = [r.rating for r in rows if r.rated_title]
    assert rated == sorted(rated, reverse=True)
    recommended = {r.recommended_title for r in rows if r.recommended_title}
    assert len(recommended) == TOP_K
    assert not recommended & {r.rated_title for r in rows}  # rated movies are never recommended


def check_most_recommended(engine: sa.Engine) -> None:
    rows = _run(engine, "most_recommended", n=5)
    assert [(r.version, r.place) for r in rows] == [(v, p) for v in (V1, V2) for p in range(1, 6)]
    for version in (V1, V2):
        counts = [r.recommended_to for r in rows if r.version == version]
        assert counts == sorted(counts, reverse=True)
    assert all(0 < r.share_of_users <= 1 for r in rows)
    assert all(r.share_of_users == pytest.approx(r.recommended_to / N_USERS) for r in rows)


def check_catalogue_coverage(engine: sa.Engine) -> None:
    rows = _run(engine, "catalogue_coverage")
    assert [r.version for r in rows] == [V1, V2]
    for r in rows:
        assert r.users == N_USERS
        assert 0 < r.coverage <= 1
        assert r.coverage == pytest.approx(r.movies_recommended / r.catalogue_size)
        assert r.fallback_share == pytest.approx(len(UNRATED_USERS) / N_USERS)


def check_version_overlap(engine: sa.Engine) -> None:
    itself = _run(engine, "version_overlap", version_a=V1, version_b=V1, k=TOP_K)
    assert [tuple(r) for r in itself] == [(N_USERS, 1.0, 1.0)]
    for a, b in ((V1, V2), (V2, V1)):
        (found,) = _run(engine, "version_overlap", version_a=a, version_b=b, k=5)
        expected = overlap(engine, a, b, 5)
        assert found.users == expected.users == N_USERS
        assert found.mean_jaccard == pytest.approx(expected.mean_jaccard, rel=1e-12)
        assert found.identical_share == pytest.approx(expected.identical_share, rel=1e-12)
        assert 0 < expected.mean_jaccard < 1  # the versions differ, but not in every list


def check_genre_mix(engine: sa.Engine) -> None:
    rows = _run(engine, "genre_mix", alias="production")
    assert len(rows) > 1
    assert sum(r.share_of_recommendations for r in rows) == pytest.approx(1)
    assert sum(r.share_of_ratings for r in rows) == pytest.approx(1)
    for r in rows:
        assert r.difference == pytest.approx(r.share_of_recommendations - r.share_of_ratings)
    shares = [r.share_of_recommendations for r in rows]
    assert shares == sorted(shares, reverse=True)


def check_similar_movies(engine: sa.Engine) -> None:
    rows = _run(engine, "similar_movies", movie_id=MOVIE, n=4)
    similar = schema.similar_items
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(similar.c.rank, similar.c.similar_movie_id, similar.c.score)
            .where(similar.c.version == V2, similar.c.movie_id == MOVIE, similar.c.rank <= 4)
            .order_by(similar.c.rank)
        ).all()
    assert {r.version for r in rows} == {V2}  # no alias set: the latest published
    assert [(r.rank, r.similar_movie_id, r.score) for r in rows] == [tuple(s) for s in stored]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    assert MOVIE not in {r.similar_movie_id for r in rows}
    assert all(r.similar_title and r.like_title for r in rows)


CHECKS: dict[str, Callable[[sa.Engine], None]] = {
    "top_n_for_user": check_top_n_for_user,
    "rated_vs_recommended": check_rated_vs_recommended,
    "most_recommended": check_most_recommended,
    "catalogue_coverage": check_catalogue_coverage,
    "version_overlap": check_version_overlap,
    "genre_mix": check_genre_mix,
    "similar_movies": check_similar_movies,
}

#: The psql variables each file needs, as the README's examples set them.
PSQL_VARIABLES: dict[str, dict[str, object]] = {
    "top_n_for_user": {"user_id": USER, "n": 5, "alias": "production"},
    "rated_vs_recommended": {"user_id": USER, "n": 10, "alias": "production"},
    "most_recommended": {"n": 3},
    "catalogue_coverage": {},
    "version_overlap": {"version_a": V1, "version_b": V2, "k": 10},
    "genre_mix": {"alias": "production"},
    "similar_movies": {"movie_id": MOVIE, "n": 5},
}


def test_every_example_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(PSQL_VARIABLES) == sqlfiles.names("examples")


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_returns_sensible_rows(published: tuple[sa.Engine, str], name: str) -> None:
    CHECKS[name](published[0])


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
@pytest.mark.parametrize("name", sorted(PSQL_VARIABLES))
def test_example_runs_in_psql_as_documented(
    published: tuple[sa.Engine, str], database_url: URL, name: str
) -> None:
    _engine, schema_name = published
    variables = [f"--variable={key}={value}" for key, value in PSQL_VARIABLES[name].items()]
    result = subprocess.run(
        ["psql", "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--csv", *variables,
         "--file", str(SQL / "examples" / f"{name}.sql"),
         database_url.set(drivername="postgresql").render_as_string(hide_password=False)],
        env={**os.environ, "PGOPTIONS": f"-c search_path={schema_name}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) >= 2  # a header and at least one row


def test_readme_names_every_file_with_an_example() -> None:
    readme = (SQL / "README.md").read_text(encoding="utf-8")
    for folder in ("views", "examples"):
        for name in sqlfiles.names(folder):
            assert f"{folder}/{name}.sql" in readme, name
