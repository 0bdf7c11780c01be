"""Split a delimited file into raw fields, remembering each row's physical line for messages.

Unquoted chunks go through numpy (field counts per line) and pandas' C reader, which keeps a
million-row ratings file to a fraction of a second; only chunks holding CSV quotes take the
slower ``csv`` module path. Values stay raw here: typing and range checks live in ``validate``.

Encodings: a UTF-8 byte-order mark is dropped and makes the file UTF-8 whatever its dialect says,
since the mark says so. A latin-1 file (the MovieLens .dat releases) whose first non-ASCII text
is valid UTF-8 was re-saved as UTF-8 and is read as such: decoding it as latin-1 would store
"CafÃ©" for "Café" without a word, and latin-1 accents almost never form valid UTF-8.
"""

import csv
import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recsys.ingest.errors import InputError
from recsys.ingest.parse.source import Progress, Source, read_chunks

_UNIT_SEP = b"\x1f"  # stands in for a multi-byte separator such as "::"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SEPARATORS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class Dialect:
    """How a file is written: field separator, encoding, and whether CSV quoting applies."""

    sep: str
    encoding: str
    quoted: bool = False


TAB_LATIN1 = Dialect("\t", "latin-1")
PIPE_LATIN1 = Dialect("|", "latin-1")
COLONS_LATIN1 = Dialect("::", "latin-1")
CSV_UTF8 = Dialect(",", "utf-8", quoted=True)


@dataclass(frozen=True)
class Table:
    """Raw fields (NaN where empty), one column per field, and each row's 1-based line."""

    source: str
    header: tuple[str, ...] | None
    columns: pd.DataFrame
    lines: np.ndarray

    def error(self, message: str, row: int | None = None, value: object = None) -> InputError:
        """An InputError pointing at ``row`` (a position in ``columns``)."""
        line = None if row is None else int(self.lines[row])
        return InputError(message, self.source, line, value)


def read_table(
    source: Source,
    dialect: Dialect,
    names: Sequence[str] | None = None,
    text: Collection[str] = (),
    progress: Progress | None = None,
) -> Table:
    """Read every row of ``source`` into one table (see :func:`read_tables`)."""
    tables = list(read_tables(source, dialect, names, text, progress))
    if len(tables) == 1:
        return tables[0]
    columns = pd.concat([table.columns for table in tables], ignore_index=True)
    lines = np.concatenate([table.lines for table in tables])
    return Table(source.name, tables[0].header, columns, lines)


def read_tables(
    source: Source,
    dialect: Dialect,
    names: Sequence[str] | None = None,
    text: Collection[str] = (),
    progress: Progress | None = None,
) -> Iterator[Table]:
    """Read ``source`` a chunk of lines at a time, yielding a table per chunk with rows, so a
    large file never has to fit in memory; ``names`` for headerless files, else the first line
    is the header. Columns in ``text`` stay strings; others are parsed as numbers where they
    can be. A file without rows is an error once the end is reached."""
    header = None if names is None else tuple(names)
    has_header = names is None
    rows_seen = False
    empty = True
    # None until a latin-1 file shows non-ASCII text: then UTF-8 if that text is valid UTF-8.
    encoding = "utf-8" if dialect.encoding == "utf-8" else None
    for chunk, first in read_chunks(source, progress):
        if empty:
            chunk, encoding = _byte_order_mark(chunk, source.name, encoding)
        empty = False
        encoding = _check_bytes(chunk, first, source.name, encoding)
        chunk_dialect = replace(dialect, encoding=encoding or dialect.encoding)
        if header is None:
            head, _, chunk = chunk.partition(b"\n")
            header = _parse_header(head, chunk_dialect)
            _check_header(header, source.name, dialect.sep)
            first += 1
        if not chunk:
            continue
        if len(header) > 1 and not (dialect.quoted and b'"' in chunk):
            frame, rows = _split_fast(chunk, first, header, chunk_dialect, text, source.name)
        else:
            frame, rows = _split_rows(chunk, first, header, chunk_dialect, source.name)
        if len(frame):
            rows_seen = True
            yield Table(source.name, header if has_header else None, frame, rows)
    if empty:
        raise InputError("file is empty", source.name)
    if not rows_seen:
        line, value = (1, dialect.sep.join(header)) if has_header else (None, None)
        raise InputError("file has no data rows", source.name, line, value)


def _byte_order_mark(chunk: bytes, name: str, encoding: str | None) -> tuple[bytes, str | None]:
    """Drop a UTF-8 mark from the file's first chunk (the file is then UTF-8); refuse UTF-16,
    whose NUL bytes would otherwise be all the message could name."""
    if chunk.startswith(_UTF16_BOMS):
        raise InputError(
            "file is UTF-16 encoded (it starts with a UTF-16 byte-order mark); save it as UTF-8",
            name,
            1,
        )
    if chunk.startswith(_UTF8_BOM):
        return chunk[len(_UTF8_BOM) :], "utf-8"
    return chunk, encoding


def _check_bytes(chunk: bytes, first: int, name: str, encoding: str | None) -> str | None:
    """Reject bytes PostgreSQL text cannot hold (invalid UTF-8, NUL) and lone carriage returns;
    return the file's encoding, deciding it for a latin-1 file at its first non-ASCII chunk."""

    def line_at(offset: int) -> int:
        return first + chunk.count(b"\n", 0, offset)

    nul = chunk.find(b"\x00")
    if nul >= 0:
        raise InputError(
            "NUL character (PostgreSQL text cannot hold it)", name, line_at(nul), "\x00"
        )
    cr = chunk.find(b"\r")  # CRLF is LF by now
    if cr >= 0:
        raise InputError(
            "carriage return without a line feed (old Mac line ends?); save the file with "
            "LF or CRLF line ends",
            name,
            line_at(cr),
        )
    error = None if encoding == "latin-1" or chunk.isascii() else _utf8_error(chunk)
    if encoding is None and not chunk.isascii():
        encoding = "utf-8" if error is None else "latin-1"
    if encoding == "utf-8" and error is not None:
        bad = chunk[error.start : error.end]
        raise InputError("bytes are not valid UTF-8", name, line_at(error.start), bad)
    return encoding


def _utf8_error(data: bytes) -> UnicodeDecodeError | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    return None


def _parse_header(head: bytes, dialect: Dialect) -> tuple[str, ...]:
    text = head.decode(dialect.encoding)
    if dialect.quoted:
        return tuple(name.strip() for name in next(csv.reader([text]), []))
    return tuple(name.strip() for name in text.split(dialect.sep))


def _check_header(header: tuple[str, ...], name: str, sep: str) -> None:
    if not any(header):
        raise InputError("header line is empty", name, 1, "")
    if len(header) == 1:
        other = next((s for s in _SEPARATORS if s != sep and s in header[0]), None)
        if other is not None:
            raise InputError(
                f"header has a single column: fields look separated by {other!r}, not {sep!r}",
                name,
                1,
                header[0],
            )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise InputError("repeated column(s)", name, 1, ",".join(repeated))


def _wrong_count(expected: int, found: int, line: int, text: str, name: str) -> InputError:
    return InputError(f"expected {expected} fields, found {found}", name, line, text)


def _split_fast(
    chunk: bytes,
    first: int,
    names: Sequence[str],
    dialect: Dialect,
    text: Collection[str],
    source: str,
) -> tuple[pd.DataFrame, np.ndarray]:
    sep = dialect.sep.encode(dialect.encoding)
    if len(sep) > 1:
        if _UNIT_SEP in chunk:
            line = first + chunk.count(b"\n", 0, chunk.index(_UNIT_SEP))
            raise InputError("unexpected control character", source, line, "\x1f")
        chunk, sep = chunk.replace(sep, _UNIT_SEP), _UNIT_SEP
    data = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate(([0], ends[:-1] + 1))
    fields = np.diff(np.searchsorted(np.flatnonzero(data == sep[0]), ends), prepend=0) + 1
    filled = ends > starts
    bad = np.flatnonzero(filled & (fields != len(names)))
    if bad.size:
        i = bad[0]
        line_text = chunk[starts[i] : ends[i]].decode(dialect.encoding, "replace")
        raise _wrong_count(
            len(names),
            int(fields[i]),
            first + i,
            line_text.replace("\x1f", dialect.sep),
            source,
        )
    frame = pd.read_csv(
        io.BytesIO(chunk),
        sep=sep.decode(dialect.encoding),
        header=None,
        names=list(names),
        dtype={name: str for name in text if name in names},
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        na_values=[""],
        lineterminator="\n",
        encoding=dialect.encoding,
        engine="c",
    )
    return frame, first + np.flatnonzero(filled)


def _split_rows(
    chunk: bytes,
    first: int,
    names: Sequence[str],
    dialect: Dialect,
    source: str,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every field stays a string on this path."""
    raw_lines = chunk.decode(dialect.encoding).split("\n")[:-1]
    rows: list[list[str]] = []
    numbers: list[int] = []
    for offset, fields in _records(raw_lines, dialect, first, source):
        if not fields or fields == [""]:
            continue
        if len(fields) != len(names):
            line = first + offset
            raise _wrong_count(len(names), len(fields), line, raw_lines[offset], source)
        rows.append(fields)
        numbers.append(first + offset)
    frame = pd.DataFrame(rows, columns=list(names), dtype="str")
    return frame.mask(frame == ""), np.asarray(numbers, dtype=np.int64)


def _records(
    raw_lines: list[str], dialect: Dialect, first: int, source: str
) -> list[tuple[int, list[str]]]:
    """Fields of each line with its offset; a quoted field may not run onto the next line."""
    if not dialect.quoted:
        return [(i, line.split(dialect.sep)) for i, line in enumerate(raw_lines)]
    reader = csv.reader(raw_lines, strict=True)
    records = []
    done = 0
    try:
        for fields in reader:
            if reader.line_num - done > 1:
                raise InputError(
                    "quoted field runs past the end of the line",
                    source,
                    first + done,
                    raw_lines[done],
                )
            records.append((done, fields))
            done = reader.line_num
    except csv.Error as exc:
        raise InputError(
            f"bad CSV quoting ({exc})", source, first + done, raw_lines[done]
        ) from None
    return records
