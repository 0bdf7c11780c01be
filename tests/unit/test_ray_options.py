"""``run --ray`` before any work: the options refused (exit 2) and what needs no cluster: how
users are cut into shards, the connection spec a worker gets, and a fault that fires once across
processes. Runs with and without the ray package installed; none starts Ray."""

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from recsys import faults
from recsys.scoring.recommender import Recommender
from recsys.scoring.topk import chunk_rows
from recsys.storage.database import EngineSpec, Timeouts, parse_url
from recsys_jobs.cli import main

#: Never reached: every command here stops before connecting.
URL = "postgresql://me@db.invalid:5432/app"


def _run(*options: str, url: str = URL):
    return CliRunner().invoke(
        main, ["--database-url", url, "run", "--model-version", "v", *options]
    )


def test_without_the_ray_package_ray_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = _run("--ray", "local")
    assert result.exit_code == 2, result.output
    assert "pip install 'recsys[ray]'" in result.output


def test_ray_options_without_ray_are_refused() -> None:
    result = _run("--ray-workers", "2", "--ray-worker-gpus", "1")
    assert result.exit_code == 2, result.output
    assert "--ray-workers, --ray-worker-gpus need --ray ADDRESS" in result.output


@pytest.mark.parametrize(
    "url",
    ["postgresql://me:s3cret@db.invalid/app", "postgresql://me@db.invalid/app?password=s3cret"],
)
def test_ray_refuses_a_password_on_the_command_line(url: str) -> None:
    """Ray would show this command line on its dashboard (the job's entrypoint)."""
    result = _run("--ray", "auto", url=url)
    assert result.exit_code == 2, result.output
    assert "RECSYS_DATABASE_URL" in result.output and "s3cret" not in result.output


def test_the_ray_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_RAY_ADDRESS", "auto")
    result = _run(url="postgresql://me:s3cret@db.invalid/app")
    assert result.exit_code == 2 and "--ray with a password" in result.output, result.output


def test_a_workers_connection_spec_shows_no_password_but_carries_it() -> None:
    url = parse_url("postgresql://me:s3cret@db.example/app?password=s3cret")
    spec = EngineSpec(url, "recsys", Timeouts(statement=0, lock=60))
    for shown in (repr(spec), str(spec), f"{spec}", repr([spec])):
        assert "s3cret" not in shown and "db.example" in shown
    assert pickle.loads(pickle.dumps(spec)).url.password == "s3cret"


def _recommender(n_users: int, n_items: int, trained: np.ndarray, chunk: int | None) -> Recommender:
    rng = np.random.default_rng(0)
    return Recommender(
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
        user_emb=rng.normal(size=(n_users, 4)).astype(np.float32),
        item_emb=rng.normal(size=(n_items, 4)).astype(np.float32),
        popularity=rng.random(n_items).astype(np.float32),
        trained=trained,
        exclude=sp.csr_matrix((n_users, n_items), dtype=bool),
        k=3,
        chunk_users=chunk,
    )


@pytest.mark.parametrize("chunk", [None, 7])
def test_shards_cover_every_user_once_cut_at_the_scoring_chunks(chunk: int | None) -> None:
    rng = np.random.default_rng(1)
    n_users = 20_000
    trained = rng.random(n_users) < 0.9
    recommender = _recommender(n_users, 50, trained, chunk)
    size = chunk or chunk_rows(50, 3)
    shards = recommender.shards(users_per_shard=3 * size + 1)
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n_users))
    model = [s for s in shards if trained[s].all()]
    fallback = [s for s in shards if not trained[s].any()]
    assert len(model) + len(fallback) == len(shards)
    # The model's users in order, each shard starting where a scoring chunk starts.
    assert np.array_equal(np.concatenate(model), np.flatnonzero(trained))
    assert all(len(s) == 3 * size for s in model[:-1]) and len(model[-1]) <= 3 * size
    assert all(len(s) <= 3 * size + 1 for s in fallback)


def test_a_shard_is_its_users_with_the_whole_item_side() -> None:
    trained = np.array([True, False, True, True])
    recommender = _recommender(4, 6, trained, None)
    users = np.array([3, 1])
    shard = recommender.with_users(recommender.user_rows(users))
    assert np.array_equal(shard.user_ids, [3, 1]) and np.array_equal(shard.trained, [True, False])
    assert shard.item_emb is recommender.item_emb
    together = [c.columns[0] for c in recommender.chunks(users)]
    alone = [c.columns[0] for c in shard.chunks()]
    assert [a.tolist() for a in together] == [a.tolist() for a in alone]


def test_a_fault_fires_once_across_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "fired"
    monkeypatch.setenv(faults.ENV, "shard:committed")
    monkeypatch.setenv(faults.ONCE_ENV, str(marker))
    assert faults.environment() == {faults.ENV: "shard:committed", faults.ONCE_ENV: str(marker)}
    with pytest.raises(faults.InjectedFault):
        faults.checkpoint("shard:committed")
    assert marker.exists()
    faults.checkpoint("shard:committed")  # a retry, here or in another process, gets through
