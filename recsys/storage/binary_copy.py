"""``COPY ... FROM STDIN (FORMAT BINARY)`` straight from numpy columns.

A run writes millions of output rows (20M interactions: 1M users × 10 recommendations, and an
embedding per user); encoding them as text in Python (a literal per embedding) costs more than the
COPY itself. Binary COPY rows of fixed-width fields have a fixed layout, so a numpy structured
array *is* the wire format: one vectorised fill per chunk, no per-row Python object.

Public API:
    binary_copy(conn, table, columns) -> context manager yielding write(fields) -> rows written

``fields`` are one entry per column: a 1-D numpy array (int16 → smallint, int32 → integer,
int64 → bigint, float32 → real, float64 → double precision), a 2-D float32 array (real[] of its
width), or a ``str`` written as the same text on every row. None of them may hold NULLs.
"""

import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import sqlalchemy as sa
from psycopg import sql

from recsys.storage.bulk import driver_connection

Field = np.ndarray | str
Write = Callable[[Sequence[Field]], int]

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_FLOAT4_OID = 700
_SCALARS = {
    np.dtype(np.int16): ">i2",
    np.dtype(np.int32): ">i4",
    np.dtype(np.int64): ">i8",
    np.dtype(np.float32): ">f4",
    np.dtype(np.float64): ">f8",
}


@contextmanager
def binary_copy(
    conn: sa.Connection, table: sql.Composable, columns: Sequence[str]
) -> Iterator[Write]:
    """COPY into ``table`` (``columns``, in order) within ``conn``'s transaction; yields a
    ``write(fields)`` that encodes and sends one chunk of rows and returns its row count."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)
    with driver_connection(conn).cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(_HEADER)

        def write(fields: Sequence[Field]) -> int:
            if len(fields) != len(columns):
                raise ValueError(f"expected {len(columns)} fields, got {len(fields)}")
            rows = encode(fields)
            copy.write(rows.data)
            return len(rows)

        yield write
        copy.write(_TRAILER)


def encode(fields: Sequence[Field]) -> np.ndarray:
    """The rows as a structured array whose bytes are binary COPY tuples (no header)."""
    lengths = {len(f) for f in fields if isinstance(f, np.ndarray)}
    if len(lengths) != 1:
        raise ValueError(f"columns must have one common length (and one array), got {lengths}")
    (n_rows,) = lengths
    layout: list[tuple] = [("count", ">i2")]
    for i, field in enumerate(fields):
        layout += [(f"len{i}", ">i4"), *_layout(i, field)]
    rows = np.empty(n_rows, dtype=np.dtype(layout))
    rows["count"] = len(fields)
    for i, field in enumerate(fields):
        _fill(rows, i, field)
    return rows


def _layout(i: int, field: Field) -> list[tuple]:
    if isinstance(field, str):
        return [(f"f{i}", f"S{len(field.encode())}")]
    if field.ndim == 2 and field.dtype == np.float32:
        array_header = [(f"h{i}", ">i4", (5,))]  # ndim, has-null flag, element type, size, lbound
        return [*array_header, (f"f{i}", [("len", ">i4"), ("value", ">f4")], (field.shape[1],))]
    if field.ndim == 1 and field.dtype in _SCALARS:
        return [(f"f{i}", _SCALARS[field.dtype])]
    raise TypeError(f"no binary COPY encoding for a {field.ndim}-D {field.dtype} column")


def _fill(rows: np.ndarray, i: int, field: Field) -> None:
    if isinstance(field, str):
        raw = field.encode()
        rows[f"len{i}"], rows[f"f{i}"] = len(raw), raw
    elif field.ndim == 2:
        width = field.shape[1]
        rows[f"len{i}"] = 20 + 8 * width
        rows[f"h{i}"] = (1, 0, _FLOAT4_OID, width, 1)
        rows[f"f{i}"]["len"] = 4
        rows[f"f{i}"]["value"] = field
    else:
        rows[f"len{i}"] = field.dtype.itemsize
        rows[f"f{i}"] = field
