"""Each item's most similar items: the cosine of the final embeddings, top-k over the catalogue.

Scored like the recommendations (:mod:`recsys.scoring.topk`, a chunk of items at a time, never an
items × items matrix) and cut into rows the same way (:func:`recsys.scoring.recommender.
ranked_rows`).

Public API:
    similar_item_rows(item_ids, item_emb, k) -> Iterator[columns]   a chunk of items at a time
"""

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from recsys.scoring.recommender import ranked_rows
from recsys.scoring.topk import top_k_chunks
from recsys.storage.binary_copy import Field

SIMILAR_COLUMNS = ("movie_id", "rank", "similar_movie_id", "score")


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
        columns, lengths = ranked_rows(item_ids[items], similar, scores, item_ids)
        if lengths.any():
            yield columns
