"""Every user's top-k list from a trained model: the model's ranking for the users it learnt,
the popularity ranking for the others, never an item the user rated.

The lists are made a scoring chunk of users at a time (:mod:`recsys.scoring.topk`) and go out by
binary COPY straight from numpy (recsys/storage/binary_copy.py), so no list of every user exists
whole in memory. A Ray run scores the same lists in shards (recsys/scale_out/), cut where
:meth:`Recommender.shards` says so that every score is the local path's to the bit.

Public API:
    Recommender(...)                 everything needed to make any user's list
        .chunks(users)               -> Iterator[ListChunk(columns, lengths)]
        .shard(users)                -> Recommender for just those users (rows re-indexed)
        .user_rows(users)            -> UserRows: the user-side arrays of those users alone
        .with_users(rows)            -> Recommender: this item side with those users
        .shards(users_per_shard)     -> list of user index arrays, cut where chunks() cuts
    ShortLists(without, fewer_than_k), .add(...)
    copy_recommendations(conn, target, recommender) -> (rows written, ShortLists)
    ranked_rows(row_ids, items, scores, item_ids) -> (columns, lengths)   a top-k block as rows
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from psycopg import sql

from recsys.faults import checkpoint
from recsys.scoring.topk import chunk_rows, shared_top_k_chunks, top_k_chunks
from recsys.storage.binary_copy import Field, binary_copy

RECOMMENDATION_COLUMNS = ("user_id", "rank", "movie_id", "score", "source")


def ranked_rows(
    row_ids: np.ndarray, items: np.ndarray, scores: np.ndarray, item_ids: np.ndarray
) -> tuple[list[Field], np.ndarray]:
    """A top-k block as output columns (the row's id, rank from 1, the item's external id, the
    score) without the padding of short lists (item -1); and each row's list length."""
    present = items >= 0
    lengths = present.sum(axis=1)
    rank = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int16), items.shape)
    columns: list[Field] = [
        np.repeat(row_ids, lengths).astype(np.int64),
        rank[present],
        item_ids[items[present]].astype(np.int64),
        scores[present].astype(np.float32),
    ]
    return columns, lengths


@dataclass
class ShortLists:
    """Users whose list is empty or shorter than k: they have rated every item that can be
    recommended, or all but a few. Their lists are short, never padded."""

    without: int = 0
    fewer_than_k: int = 0

    def add(self, lengths: np.ndarray, k: int) -> None:
        self.without += int((lengths == 0).sum())
        self.fewer_than_k += int(((lengths > 0) & (lengths < k)).sum())


@dataclass(frozen=True)
class ListChunk:
    """Recommendation rows of a chunk of users (columns in ``RECOMMENDATION_COLUMNS`` order),
    and each of those users' list length (0 for a user who rated every candidate)."""

    columns: list[Field]
    lengths: np.ndarray


@dataclass(frozen=True)
class UserRows:
    """The user-side arrays of a :class:`Recommender` for some users (row i is user i): a shard
    as sent to a worker that holds the item side already, which travels once, not per shard."""

    user_ids: np.ndarray
    user_emb: np.ndarray
    trained: np.ndarray
    exclude: sp.csr_matrix


@dataclass(frozen=True)
class Recommender:
    """Everything needed to make any user's top-k list.

    Users are indices into ``user_ids``; items are positions among the candidates (the items the
    model learnt), whose external ids are ``item_ids``. Users the model learnt (``trained``) get
    its top-k by embedding score; the others get the popularity ranking. ``exclude`` (users ×
    candidates) holds every item each user rated, which is never recommended to them.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_emb: np.ndarray
    item_emb: np.ndarray
    popularity: np.ndarray
    trained: np.ndarray
    exclude: sp.csr_matrix
    k: int
    #: Users scored per product (None: sized to the catalogue, see topk.chunk_rows). Scores
    #: depend on it in their last bit, so :meth:`shards` cuts at multiples of it.
    chunk_users: int | None = None

    def chunks(self, users: np.ndarray | None = None) -> Iterator[ListChunk]:
        """The lists of ``users`` (default: all), a scoring chunk at a time; the model's users
        first."""
        users = np.arange(len(self.user_ids)) if users is None else np.asarray(users, np.int64)
        learnt = self.trained[users]
        options = {"exclude": self.exclude}
        scored = top_k_chunks(
            self.user_emb,
            self.item_emb,
            self.k,
            users=users[learnt],
            chunk_size=self._chunk_users(),
            **options,
        )
        popular = shared_top_k_chunks(
            self.popularity, len(self.user_ids), self.k, users=users[~learnt], **options
        )
        for source, chunks in (("model", scored), ("fallback", popular)):
            for chunk_users, items, scores in chunks:
                yield self._rows(chunk_users, items, scores, source)

    def shard(self, users: np.ndarray) -> "Recommender":
        """The same lists for ``users`` only, with the user-side arrays cut down to them (what a
        worker scoring that shard needs)."""
        return self.with_users(self.user_rows(users))

    def user_rows(self, users: np.ndarray) -> UserRows:
        """The user-side arrays of ``users`` alone."""
        users = np.asarray(users, np.int64)
        return UserRows(**{f.name: getattr(self, f.name)[users] for f in fields(UserRows)})

    def with_users(self, rows: UserRows) -> "Recommender":
        """This item side with ``rows``' users (and only them)."""
        return replace(self, **{f.name: getattr(rows, f.name) for f in fields(UserRows)})

    def shards(self, users_per_shard: int) -> list[np.ndarray]:
        """Every user, in shards of about ``users_per_shard``, each scoring what :meth:`chunks`
        scores for it to the bit: the model's users in order, cut at multiples of the scoring
        chunk (so every product has the rows and shape it has in one process), then the
        fallback users (a shared ranking, the same however they are cut)."""
        chunk = self._chunk_users()
        learnt = max(1, round(users_per_shard / chunk)) * chunk
        parts = (
            (np.flatnonzero(self.trained), learnt),
            (np.flatnonzero(~self.trained), max(1, users_per_shard)),
        )
        return [users[i : i + size] for users, size in parts for i in range(0, len(users), size)]

    def _chunk_users(self) -> int:
        return self.chunk_users or chunk_rows(len(self.item_ids), self.k)

    def _rows(
        self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, source: str
    ) -> ListChunk:
        columns, lengths = ranked_rows(self.user_ids[users], items, scores, self.item_ids)
        return ListChunk([*columns, source], lengths)


def copy_recommendations(
    conn: sa.Connection, target: sql.Composable, recommender: Recommender
) -> tuple[int, ShortLists]:
    """The recommender's lists into ``target`` within ``conn``'s transaction: the rows written,
    and the short lists counted. Each chunk sent passes the fault point ``rows:recommendations``
    (rows out, not committed)."""
    short, written = ShortLists(), 0
    with binary_copy(conn, target, RECOMMENDATION_COLUMNS) as write:
        for chunk in recommender.chunks():
            if chunk.lengths.any():
                written += write(chunk.columns)
                checkpoint("rows:recommendations")
            short.add(chunk.lengths, recommender.k)
    return written, short
