"""A version's outputs, built from the trained model and streamed into the run's own tables.

What a run writes, in this order (fault injection names each ``write:<table>``): the training
history, the evaluation results, the embeddings of the users and items the model learnt, each
item's most similar items, and every user's recommendations. The large ones never exist whole in
memory: embeddings go out ``CHUNK_ROWS`` at a time, similar items and recommendations a scoring
chunk at a time, each by binary COPY straight from numpy (recsys/storage/binary_copy.py).

Public API:
    Recommender(...)                 everything needed to make any user's list
        .chunks(users)               -> Iterator[ListChunk(columns, lengths)]
        .shard(users)                -> Recommender for just those users (rows re-indexed)
    ShortLists(without, fewer_than_k), .add(...)
    write_history(tables, history, eval_k)
    write_evaluation(tables, rows)
    write_embeddings(tables, table, ids, embeddings, layer0)
    similar_item_rows(item_ids, item_emb, k) -> Iterator[columns]   a chunk of items at a time
    write_similar_items(tables, item_ids, item_emb, k) -> rows written
    write_recommendations(tables, recommender) -> ShortLists
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sqlalchemy as sa

from recsys.evaluation.evaluate import EvaluationRow
from recsys.evaluation.topk import shared_top_k_chunks, top_k_chunks
from recsys.model.train import EpochStats
from recsys.storage import schema
from recsys.storage.binary_copy import Field, binary_copy
from recsys.storage.publish import RunTables

#: Embedding rows encoded and sent per COPY write (1M users at dim 64: 25 MB a write).
CHUNK_ROWS = 100_000
RECOMMENDATION_COLUMNS = ("user_id", "rank", "movie_id", "score", "source")
SIMILAR_COLUMNS = ("movie_id", "rank", "similar_movie_id", "score")
#: Names under which the evaluated rankers' figures are stored in ``evaluation_results.model``.
STORED_NAMES = {"model": "lightgcn", "baseline": "popularity", "champion": "champion"}


def write_history(tables: RunTables, history: Sequence[EpochStats], eval_k: int) -> None:
    """One row per epoch: loss, validation NDCG@eval_k (when validating), seconds."""
    frame = pd.DataFrame(
        {
            "epoch": [h.epoch for h in history],
            "loss": [h.loss for h in history],
            "validation_metric": [
                f"ndcg@{eval_k}" if h.val_ndcg is not None else None for h in history
            ],
            "validation_value": [h.val_ndcg for h in history],
            "seconds": [h.seconds for h in history],
        }
    )
    tables.copy_frame(schema.training_history, frame)


def write_evaluation(tables: RunTables, rows: Sequence[EvaluationRow]) -> pd.DataFrame:
    """The evaluation rows as stored (and returned, for the run's summary)."""
    frame = pd.DataFrame(
        {
            "model": [STORED_NAMES[r.model] for r in rows],
            "metric": [r.metric for r in rows],
            "k": [r.k for r in rows],
            "value": [r.value for r in rows],
            "users_counted": [r.n_users for r in rows],
        }
    )
    tables.copy_frame(schema.evaluation_results, frame)
    return frame


def write_embeddings(
    tables: RunTables, table: sa.Table, ids: np.ndarray, embeddings: np.ndarray, layer0: np.ndarray
) -> int:
    """``ids`` (external user or movie ids), their final embeddings and their layer-0 rows (the
    trainable state a later run can warm-start from), as real[] arrays."""
    id_column = table.c.user_id if "user_id" in table.c else table.c.movie_id
    columns = (id_column.name, "embedding", "layer0")
    with binary_copy(tables.conn, tables.open(table), columns) as write:
        for start in range(0, len(ids), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            ids_chunk = np.asarray(ids[start:stop], np.int64)
            write([ids_chunk, embeddings[start:stop], layer0[start:stop]])
    return len(ids)


def similar_item_rows(item_ids: np.ndarray, item_emb: np.ndarray, k: int) -> Iterator[list[Field]]:
    """Each item's ``k`` nearest other items by cosine of the final embeddings, best first, as
    ``SIMILAR_COLUMNS`` a chunk of items at a time.

    The unit-length item table is scored against itself (the same top-k as recommendations:
    never an items × items matrix), each item excluding itself. An item with a zero embedding
    scores 0 against every other; with fewer than k + 1 items, lists are shorter, never padded.
    """
    item_emb = np.asarray(item_emb, np.float32)
    norms = np.linalg.norm(item_emb, axis=1, keepdims=True)
    unit = item_emb / np.maximum(norms, np.finfo(np.float32).tiny)
    itself = sp.identity(len(item_ids), dtype=np.int8, format="csr")
    for items, similar, scores in top_k_chunks(unit, unit, k, exclude=itself):
        np.clip(scores, -1.0, 1.0, out=scores)  # rounding can leave a cosine just past 1
        columns, lengths = _ranked_rows(item_ids[items], similar, scores, item_ids)
        if lengths.any():
            yield columns


def write_similar_items(
    tables: RunTables, item_ids: np.ndarray, item_emb: np.ndarray, k: int
) -> int:
    """:func:`similar_item_rows` into the run's similar_items table; the rows written."""
    written = 0
    target = tables.open(schema.similar_items)
    with binary_copy(tables.conn, target, SIMILAR_COLUMNS) as write:
        for columns in similar_item_rows(item_ids, item_emb, k):
            written += write(columns)
    return written


def _ranked_rows(
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

    def chunks(self, users: np.ndarray | None = None) -> Iterator[ListChunk]:
        """The lists of ``users`` (default: all), a scoring chunk at a time; the model's users
        first."""
        users = np.arange(len(self.user_ids)) if users is None else np.asarray(users, np.int64)
        learnt = self.trained[users]
        options = {"exclude": self.exclude}
        scored = top_k_chunks(self.user_emb, self.item_emb, self.k, users=users[learnt], **options)
        popular = shared_top_k_chunks(
            self.popularity, len(self.user_ids), self.k, users=users[~learnt], **options
        )
        for source, chunks in (("model", scored), ("fallback", popular)):
            for chunk_users, items, scores in chunks:
                yield self._rows(chunk_users, items, scores, source)

    def shard(self, users: np.ndarray) -> "Recommender":
        """The same lists for ``users`` only, with the user-side arrays cut down to them (what a
        worker scoring that shard needs)."""
        users = np.asarray(users, np.int64)
        return replace(
            self,
            user_ids=self.user_ids[users],
            user_emb=self.user_emb[users],
            trained=self.trained[users],
            exclude=self.exclude[users],
        )

    def _rows(
        self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, source: str
    ) -> ListChunk:
        columns, lengths = _ranked_rows(self.user_ids[users], items, scores, self.item_ids)
        return ListChunk([*columns, source], lengths)


def write_recommendations(tables: RunTables, recommender: Recommender) -> ShortLists:
    """Every user's list into the run's recommendations table; counts the short ones."""
    short = ShortLists()
    target = tables.open(schema.recommendations)
    with binary_copy(tables.conn, target, RECOMMENDATION_COLUMNS) as write:
        for chunk in recommender.chunks():
            if chunk.lengths.any():
                write(chunk.columns)
            short.add(chunk.lengths, recommender.k)
    return short
