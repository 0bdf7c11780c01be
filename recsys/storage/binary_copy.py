"""``COPY ... FROM STDIN (FORMAT BINARY)`` straight from numpy columns.

A run writes millions of output rows (20M interactions: 1M users × 10 recommendations, and an
embedding per user); encoding them as text in Python (a literal per embedding) costs more than the
COPY itself. Binary COPY rows of fixed-width fields have a fixed layout, so a numpy structured
array *is* the wire format: one vectorised fill per chunk, no per-row Python object.

The same layout read back: ``COPY (query) TO STDOUT (FORMAT BINARY)`` of (bigint, real[]) rows is
decoded by ``np.frombuffer`` a block of rows at a time (how a run reads an earlier version's
embeddings, 1M users × 64 floats, without a Python object per row or per float).

Public API:
    binary_copy(conn, table, columns) -> context manager yielding write(fields) -> rows written
    read_vectors(conn, query) -> Iterator[(ids int64 [n], vectors float32 [n, width])]

``fields`` are one entry per column: a 1-D numpy array (int16 → smallint, int32 → integer,
int64 → bigint, float32 → real, float64 → double precision), a 2-D float32 array (real[] of its
width), or a ``str`` written as the same text on every row. None of them may hold NULLs.
"""

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import sqlalchemy as sa
from psycopg import sql

from recsys.storage.bulk import driver_connection

Field = np.ndarray | str
Write = Callable[[Sequence[Field]], int]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = _SIGNATURE + struct.pack(">ii", 0, 0)
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
    rows = np.empty(n_rows, dtype=_row_dtype(fields))
    rows["count"] = len(fields)
    for i, field in enumerate(fields):
        _fill(rows, i, field)
    return rows


def _row_dtype(fields: Sequence[Field]) -> np.dtype:
    """The binary COPY tuple of these fields as a numpy structured type."""
    layout: list[tuple] = [("count", ">i2")]
    for i, field in enumerate(fields):
        layout += [(f"len{i}", ">i4"), *_layout(i, field)]
    return np.dtype(layout)


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


#: Bytes of COPY output decoded at once (about 60K rows of 64 floats).
_READ_BYTES = 1 << 24
#: Offset of the array's width in the first tuple: count, id's length and value, the array's
#: length, then its header (ndim, has-null flag, element type) before the width.
_WIDTH_AT = 2 + 4 + 8 + 4 + 12


def read_vectors(
    conn: sa.Connection, query: sql.Composable
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The (bigint, real[]) rows of ``query`` in blocks of (ids, vectors), by binary COPY.

    Every array must be one-dimensional, without NULLs and of one width (a version's embeddings
    are); anything else raises ValueError rather than being misread.
    """
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)
    with driver_connection(conn).cursor() as cursor, cursor.copy(statement) as copy:
        yield from _decode(bytes(block) for block in copy)


def _decode(blocks: Iterable[bytes]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode a binary COPY stream of (bigint, real[]) rows, a few MB of rows at a time."""
    pending = bytearray()
    dtype: np.dtype | None = None
    for block in blocks:
        pending += block
        if dtype is None:
            if len(pending) < len(_HEADER) + _WIDTH_AT + 4:
                continue
            dtype, pending = _start(pending)
        if len(pending) >= _READ_BYTES:
            whole = len(pending) - len(pending) % dtype.itemsize
            yield _rows(bytes(pending[:whole]), dtype)
            del pending[:whole]
    if dtype is None:
        if bytes(pending) != _HEADER + _TRAILER:  # anything but a stream without rows
            raise ValueError("not a binary COPY stream of (bigint, real[]) rows")
        return
    if pending[-2:] != _TRAILER or (len(pending) - 2) % dtype.itemsize:
        raise ValueError("binary COPY stream ends mid-row")
    if len(pending) > 2:
        yield _rows(bytes(pending[:-2]), dtype)


def _start(stream: bytearray) -> tuple[np.dtype, bytearray]:
    """The row type (from the first row's array width) and the stream past the header."""
    if stream[: len(_HEADER)] != _HEADER:
        raise ValueError("not a binary COPY stream without header extensions")
    body = stream[len(_HEADER) :]
    length, width = (
        struct.unpack_from(">i", body, 2 + 4 + 8)[0],
        struct.unpack_from(">i", body, _WIDTH_AT)[0],
    )
    if length != 20 + 8 * width or width < 1:
        raise ValueError("expected (bigint, real[]) rows with a one-dimensional array, not NULL")
    sample = [np.empty(0, np.int64), np.empty((0, width), np.float32)]
    return _row_dtype(sample), body


def _rows(data: bytes, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    rows = np.frombuffer(data, dtype)
    width = rows.dtype["f1"].shape[0]
    header = np.array([1, 0, _FLOAT4_OID, width, 1])
    valid = (
        (rows["count"] == 2)
        & (rows["len0"] == 8)
        & (rows["len1"] == 20 + 8 * width)
        & (rows["h1"] == header).all(axis=1)
        & (rows["f1"]["len"] == 4).all(axis=1)
    )
    if not valid.all():
        raise ValueError(
            "expected (bigint, real[]) rows whose arrays all have one dimension of "
            f"{width} values and no NULL"
        )
    return rows["f0"].astype(np.int64), rows["f1"]["value"].astype(np.float32)
