"""The tests' own ranking and metric code, to recompute a published evaluation from what the
database holds (never the product's code): a user's ranking by scores, docs/running.md's metric
formulas for one user, and a version's stored embeddings as vectors by id."""

import math

import numpy as np
import sqlalchemy as sa

Ranking = list[int]


def embeddings(conn: sa.Connection, table: sa.Table, version: str) -> dict[int, np.ndarray]:
    """A version's final embeddings (user or item table) by external id, in float64."""
    key = table.c.user_id if "user_id" in table.c else table.c.movie_id
    rows = conn.execute(sa.select(key, table.c.embedding).where(table.c.version == version))
    return {row[0]: np.array(row[1], dtype=np.float64) for row in rows}


def ranking(scores: dict[int, float], excluded: set[int]) -> Ranking:
    """Items by descending score, ties by movie id, without ``excluded``."""
    return sorted((m for m in scores if m not in excluded), key=lambda m: (-scores[m], m))


def figures(ranked: Ranking, relevant: set[int], k: int) -> dict[str, float]:
    """One user's metrics@k (docs/running.md, "What a run does", step 4)."""
    hits = [movie in relevant for movie in ranked[:k]]
    found = sum(hits)
    dcg = sum(1 / math.log2(rank + 1) for rank, hit in enumerate(hits, 1) if hit)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    precision_sum = sum(sum(hits[:rank]) / rank for rank, hit in enumerate(hits, 1) if hit)
    first = next((rank for rank, hit in enumerate(hits, 1) if hit), None)
    return {
        "precision": found / k,
        "recall": found / len(relevant),
        "ndcg": dcg / ideal,
        "map": precision_sum / min(len(relevant), k),
        "map_full": precision_sum / len(relevant),
        "hit_rate": float(found > 0),
        "mrr": 1 / first if first else 0.0,
    }
