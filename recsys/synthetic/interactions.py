"""Synthetic interactions at scale (millions of users and items), generated in chunks.

``movielens_like.generate`` makes a small MovieLens-shaped catalogue; this makes the large data sets
of the speed and memory benchmarks (1M to 20M interactions) with the structure of real feedback:

- user activity and item popularity follow power laws (Pareto counts per user, Zipf popularity
  over items), as in Amazon-Book, where the busiest 10% of users and of items account for about
  40% of the interactions each;
- users and items have latent factors, and a user picks items with probability roughly
  proportional to popularity x exp(affinity), so a model can learn who likes what; the stars
  (1-5) follow affinity too.

Each chunk of users draws candidates by popularity, drops repeats, and keeps each user's count of
them by affinity with Gumbel noise (sampling without replacement): a few vectorised passes over
the chunk, no loop per user. Pairs are distinct, the total is exactly what was asked, and the
output depends only on the arguments and the seed.
"""

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.ingest.load.distinct_ids import sorted_distinct
from recsys.synthetic.csv_format import csv_lines

FACTORS = 16
TOPICS = 20
USERS_PER_CHUNK = 10_000
_MIN_PER_USER = 3
_MAX_SHARE_OF_ITEMS = 0.05  # the busiest user rates at most 5% of the items
_USER_PARETO = 2.0  # tail index of interactions per user
_ITEM_ZIPF = 0.6  # popularity of the item of popularity rank r is proportional to r**-0.6
_AFFINITY_SD = 1.5
_FACTOR_SD = math.sqrt(_AFFINITY_SD / math.sqrt(FACTORS))  # so user . item has sd _AFFINITY_SD
_CANDIDATES = 3  # candidates drawn per interaction kept, plus a few
_TOPIC_FOCUS = 0.1  # Dirichlet concentration of a user's liking over topics: one to three each
_ANYWHERE = 0.1  # share of candidates drawn by popularity alone, whatever the topic
_STAR_SHARES = (0.06, 0.11, 0.27, 0.34)  # 1-4 stars; the rest are 5s, as in ML-100K
_START = 1_640_995_200  # 2022-01-01 UTC
_SPAN = 730 * 86_400
# 1M interactions come with 20K items and 20M with 100K; users are a twentieth.
_ITEM_GROWTH = math.log(5) / math.log(20)


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one entry per interaction (ids start at 1)."""

    user_id: np.ndarray  # int64
    item_id: np.ndarray  # int64
    rating: np.ndarray | None  # float32 whole stars 1-5
    timestamp: np.ndarray | None  # int64 unix seconds

    def __len__(self) -> int:
        return len(self.user_id)


def default_shape(interactions: int) -> tuple[int, int]:
    """(users, items) for a data set of ``interactions``: 1M -> 50K x 20K, 20M -> 1M x 100K."""
    items = round(20_000 * (interactions / 1_000_000) ** _ITEM_GROWTH)
    return max(1, interactions // 20), max(_MIN_PER_USER, items)


def interaction_chunks(
    interactions: int,
    n_users: int,
    n_items: int,
    seed: int = 0,
    ratings: bool = True,
    timestamps: bool = True,
) -> Iterator[Interactions]:
    """Yield the interactions a chunk of users at a time (users in id order)."""
    per_user_cap = max(_MIN_PER_USER, int(n_items * _MAX_SHARE_OF_ITEMS))
    if n_users < 1 or n_items < _MIN_PER_USER:
        raise ValueError(f"need at least 1 user and {_MIN_PER_USER} items")
    if not n_users * _MIN_PER_USER <= interactions <= n_users * per_user_cap:
        raise ValueError(
            f"{interactions} interactions do not fit {n_users} users with "
            f"{_MIN_PER_USER} to {per_user_cap} each"
        )
    root = np.random.SeedSequence(seed)
    catalogue_seed, counts_seed, *chunk_seeds = root.spawn(2 + -(-n_users // USERS_PER_CHUNK))
    items = _Catalogue.draw(np.random.default_rng(catalogue_seed), n_items)
    counts = _counts(np.random.default_rng(counts_seed), n_users, interactions, per_user_cap)
    for index, chunk_seed in enumerate(chunk_seeds):
        start = index * USERS_PER_CHUNK
        chunk = _chunk(
            np.random.default_rng(chunk_seed),
            items,
            counts[start : start + USERS_PER_CHUNK],
            ratings,
            timestamps,
        )
        yield Interactions(chunk.user_id + start, chunk.item_id, chunk.rating, chunk.timestamp)


def joined(chunks: Iterable[Interactions]) -> Interactions:
    """Chunks as one set of arrays, for sizes that fit in memory."""
    chunks = list(chunks)

    def column(name: str) -> np.ndarray | None:
        parts = [getattr(chunk, name) for chunk in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    return Interactions(column("user_id"), column("item_id"), column("rating"), column("timestamp"))


def write_csv(path: Path, chunks: Iterable[Interactions]) -> int:
    """Write chunks as an ``ingest csv`` ratings file (``user_id,item_id[,rating][,timestamp]``
    header); returns the rows written."""
    rows = 0
    with Path(path).open("wb") as out:
        for number, chunk in enumerate(chunks):
            columns = {
                "user_id": chunk.user_id,
                "item_id": chunk.item_id,
                "rating": chunk.rating,
                "timestamp": chunk.timestamp,
            }
            present = {name: values for name, values in columns.items() if values is not None}
            if number == 0:
                out.write((",".join(present) + "\n").encode())
            out.write(csv_lines([values.astype(np.int64) for values in present.values()]))
            rows += len(chunk)
    return rows


@dataclass(frozen=True)
class _Catalogue:
    """The items, by popularity rank: ids (shuffled, so that popularity does not follow the id),
    a topic each, latent factors and a bias on the stars."""

    ids: np.ndarray  # id of the item of each popularity rank
    members: np.ndarray  # ranks ordered by topic, then rank
    ladder: np.ndarray  # topic + cumulative popularity within the topic, along ``members``
    factors: np.ndarray  # float32 (items, FACTORS)
    bias: np.ndarray  # float32 star bias

    @classmethod
    def draw(cls, rng: np.random.Generator, n_items: int) -> "_Catalogue":
        topic = rng.integers(0, TOPICS, n_items)
        members = np.lexsort((np.arange(n_items), topic))
        weight = (members + 1.0) ** -_ITEM_ZIPF
        total = np.bincount(topic[members], weights=weight, minlength=TOPICS)
        starts = np.searchsorted(topic[members], np.arange(TOPICS))
        running = np.cumsum(weight) - np.repeat(
            np.cumsum(total) - total, np.diff(np.r_[starts, n_items])
        )
        return cls(
            ids=rng.permutation(n_items).astype(np.int64) + 1,
            members=members,
            ladder=topic[members] + running / total[topic[members]],
            factors=rng.normal(0.0, _FACTOR_SD, (n_items, FACTORS)).astype(np.float32),
            bias=rng.normal(0.0, 0.5, n_items).astype(np.float32),
        )

    def popular(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Popularity ranks drawn with probability ~ rank**-_ITEM_ZIPF (the inverse of the
        continuous distribution function: no search through a table per draw)."""
        top = len(self.ids) ** (1.0 - _ITEM_ZIPF) - 1.0
        ranks = (1.0 + rng.random(size) * top) ** (1.0 / (1.0 - _ITEM_ZIPF)) - 1.0
        return np.minimum(ranks.astype(np.int64), len(self.ids) - 1)

    def in_topics(self, rng: np.random.Generator, topics: np.ndarray) -> np.ndarray:
        """For each topic given, the rank of an item of it, drawn by popularity within it."""
        step = np.searchsorted(self.ladder, topics + rng.random(len(topics)), side="right")
        return self.members[np.minimum(step, len(self.members) - 1)]


def _counts(rng: np.random.Generator, n_users: int, total: int, cap: int) -> np.ndarray:
    """Interactions per user: a minimum plus a Pareto-tailed share, summing to ``total``."""
    weights = rng.pareto(_USER_PARETO, n_users)
    extra = total - n_users * _MIN_PER_USER
    counts = _MIN_PER_USER + np.floor(weights * extra / max(weights.sum(), 1e-12))
    counts = np.minimum(counts, cap).astype(np.int64)
    # Rounding down and the cap leave a few short: add them one at a time to random users with
    # room (no user is picked twice per pass, so none overshoots the cap).
    while (short := total - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < cap)
        counts[rng.choice(room, min(short, len(room)), replace=False)] += 1
    return counts


def _chunk(
    rng: np.random.Generator,
    items: _Catalogue,
    counts: np.ndarray,
    ratings: bool,
    timestamps: bool,
) -> Interactions:
    """The interactions of ``len(counts)`` users; user ids are 1-based within the chunk."""
    n_users, n_items = len(counts), len(items.ids)
    factors = rng.normal(0.0, _FACTOR_SD, (n_users, FACTORS)).astype(np.float32)
    # Candidates: mostly from the user's topics, by popularity within them, some by popularity
    # alone; each user's repeats dropped (sorting pairs orders them by user, then rank).
    drawn = np.minimum(_CANDIDATES * counts + 10, n_items)
    owner = np.repeat(np.arange(n_users), drawn)
    liking = np.cumsum(rng.dirichlet(np.full(TOPICS, _TOPIC_FOCUS), n_users), axis=1)
    liking[:, -1] = 1.0
    ladder = (liking + np.arange(n_users)[:, None]).ravel()
    topics = np.searchsorted(ladder, owner + rng.random(len(owner)), side="right") - owner * TOPICS
    rank = items.in_topics(rng, np.minimum(topics, TOPICS - 1))
    anywhere = rng.random(len(owner)) < _ANYWHERE
    rank[anywhere] = items.popular(rng, int(anywhere.sum()))
    pairs = sorted_distinct(owner * n_items + rank)
    owner, rank = pairs // n_items, pairs % n_items
    available = np.bincount(owner, minlength=n_users)
    wanted = _fill_shortfall(rng, counts, available)
    # Keep each user's ``wanted`` candidates of highest affinity + Gumbel noise.
    affinity = np.einsum("ij,ij->i", factors[owner], items.factors[rank])
    keys = affinity + rng.gumbel(size=len(owner)).astype(np.float32)
    # By user, then by falling key: the fraction is in (0, 1) and falls as the key rises.
    order = np.argsort(owner + (0.5 - np.arctan(keys) / np.pi))
    place = np.arange(len(order)) - (np.cumsum(available) - available)[owner[order]]
    kept = order[place < wanted[owner[order]]]
    owner, rank, affinity = owner[kept], rank[kept], affinity[kept]
    return Interactions(
        user_id=owner.astype(np.int64) + 1,
        item_id=items.ids[rank],
        rating=_stars(rng, affinity, items.bias[rank], owner, n_users) if ratings else None,
        timestamp=_times(rng, owner, n_users) if timestamps else None,
    )


def _fill_shortfall(
    rng: np.random.Generator, counts: np.ndarray, available: np.ndarray
) -> np.ndarray:
    """Interactions to keep per user: ``counts``, less where a user drew too few distinct items,
    the shortfall taken on by users with candidates to spare (in random order)."""
    wanted = np.minimum(counts, available)
    short = int(counts.sum() - wanted.sum())
    if short:
        spare = available - wanted
        order = rng.permutation(len(counts))
        before = np.cumsum(spare[order]) - spare[order]
        wanted[order] += np.clip(short - before, 0, spare[order])
    return wanted


def _stars(
    rng: np.random.Generator,
    affinity: np.ndarray,
    item_bias: np.ndarray,
    owner: np.ndarray,
    n_users: int,
) -> np.ndarray:
    """Whole stars from affinity, item and user bias and noise, cut at the chunk's quantiles
    (a chunk holds thousands of users, so the shares hardly vary between chunks)."""
    user_bias = rng.normal(0.0, 0.4, n_users).astype(np.float32)[owner]
    noise = rng.normal(0.0, 0.6, len(owner)).astype(np.float32)
    score = affinity / _AFFINITY_SD + item_bias + user_bias + noise
    cuts = np.quantile(score, np.cumsum(_STAR_SHARES))
    return (1 + np.searchsorted(cuts, score)).astype(np.float32)


def _times(rng: np.random.Generator, owner: np.ndarray, n_users: int) -> np.ndarray:
    """Each user is active for a stretch (weeks to months) somewhere in two years."""
    first = rng.uniform(0.0, 0.9, n_users) * _SPAN
    length = np.minimum(rng.exponential(120 * 86_400, n_users) + 86_400, _SPAN - first)
    seconds = first[owner] + rng.uniform(0.0, 1.0, len(owner)) * length[owner]
    return _START + seconds.astype(np.int64)
