"""Bulk writes with ``COPY ... FROM STDIN``: how every large insert in recsys reaches PostgreSQL.

Frames are streamed as CSV in chunks (NULL = unquoted empty field), which is several times faster
than row-by-row inserts and lets a caller drive a progress bar by rows written.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql

CHUNK_ROWS = 50_000


def driver_connection(conn: sa.Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one (same transaction)."""
    return conn.connection.driver_connection


def schema_of(conn: sa.Connection) -> str:
    """The real schema the placeholder ``recsys`` maps to on this connection."""
    from recsys.storage.database import SCHEMA_PLACEHOLDER

    translate = conn.get_execution_options().get("schema_translate_map") or {}
    return translate.get(SCHEMA_PLACEHOLDER, SCHEMA_PLACEHOLDER)


def array_literal(values: object) -> str:
    """A PostgreSQL array literal for a list of strings or a 1-d numeric array."""
    if isinstance(values, np.ndarray):
        return "{" + ",".join(np.char.mod("%.9g", values)) + "}"
    quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def copy_frame(
    conn: sa.Connection,
    table: sql.Composable,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
) -> int:
    """COPY ``frame`` (columns named as the table's) into ``table``; returns rows written."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, columns)
    with driver_connection(conn).cursor() as cursor, cursor.copy(statement) as copy:
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[start : start + CHUNK_ROWS]
            copy.write(chunk.to_csv(index=False, header=False, na_rep=""))
            if progress:
                progress(len(chunk))
    return len(frame)
