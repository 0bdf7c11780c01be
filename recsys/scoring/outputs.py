"""A version's outputs, built from the trained model and streamed into the run's own tables.

What a run writes, in this order (fault injection names each ``write:<table>``): the training
history, the evaluation results, the embeddings of the users and items the model learnt, each
item's most similar items (:mod:`recsys.scoring.similar_items`), and every user's
recommendations (:mod:`recsys.scoring.recommender`). The large ones never exist whole in memory:
embeddings go out ``CHUNK_ROWS`` at a time, similar items and recommendations a scoring chunk at a
time, each by binary COPY straight from numpy (recsys/storage/binary_copy.py).

Public API:
    write_history(tables, history, eval_k)
    write_evaluation(tables, rows)
    write_embeddings(tables, table, ids, embeddings, layer0)
    write_similar_items(tables, item_ids, item_emb, k) -> rows written
    write_recommendations(tables, recommender) -> ShortLists
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recsys.evaluation.evaluate import EvaluationRow
from recsys.model.train import EpochStats
from recsys.run_config import GF_CF, POPULARITY
from recsys.scoring.recommender import Recommender, ShortLists, copy_recommendations
from recsys.scoring.similar_items import SIMILAR_COLUMNS, similar_item_rows
from recsys.storage import schema
from recsys.storage.binary_copy import binary_copy
from recsys.versions.publish import RunTables

#: Embedding rows encoded and sent per COPY write (1M users at dim 64: 25 MB a write).
CHUNK_ROWS = 100_000
#: Names under which the evaluated rankers' figures are stored in ``evaluation_results.model``.
STORED_NAMES = {
    "model": "lightgcn",
    "baseline": POPULARITY,
    "spectral": GF_CF,
    "champion": "champion",
}


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


def write_recommendations(tables: RunTables, recommender: Recommender) -> ShortLists:
    """Every user's list into the run's recommendations table; counts the short ones."""
    target = tables.open(schema.recommendations)
    return copy_recommendations(tables.conn, target, recommender)[1]
