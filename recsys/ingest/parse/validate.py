"""Turn raw fields into typed columns, and reject bad values with the file, line and value.

Every check is vectorised: it finds the first offending row with numpy and only then builds a
message, so valid million-row files cost a few array passes.
"""

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd

from recsys.ingest.errors import InputError
from recsys.ingest.parse.csv_tokenizer import Table
from recsys.ingest.parse.records import UTC_NS
from recsys.storage.schema import MAX_RATING, MIN_RATING

MAX_ID = 2**63 - 1
RATING_KEY = "rating of this user for this movie"
# What datetime64[ns] can hold, with a day to spare.
_EARLIEST = pd.Timestamp("1677-09-22", tz="UTC")
_LATEST = pd.Timestamp("2262-04-10", tz="UTC")


def first_true(mask: np.ndarray) -> int | None:
    """Position of the first True, or None: where an error message should point."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _as_written(raw: pd.Series, row: int) -> object:
    """A raw value for a message; a column with blanks holds floats, so 30 reads back as 30.0."""
    value = raw.iloc[row]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def numbers(table: Table, column: str, what: str, required: bool) -> pd.Series:
    """The column as numbers (NaN where empty); non-numeric text is an error."""
    raw = table.columns[column]
    if pd.api.types.is_bool_dtype(raw):  # pandas reads a column of only True/False as booleans
        raise table.error(f"{what} is not a number", 0, str(raw.iloc[0]))
    values = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
    row = first_true((values.isna() & raw.notna()).to_numpy())
    if row is not None:
        raise table.error(f"{what} is not a number", row, _as_written(raw, row))
    if required and (row := first_true(values.isna().to_numpy())) is not None:
        raise table.error(f"{what} is missing", row, "")
    return values


def _whole(table: Table, column: str, what: str, low: int, high: int, required: bool) -> pd.Series:
    raw = table.columns[column]
    values = numbers(table, column, what, required)
    if values.dtype.kind == "f":
        row = first_true((values.notna() & (values % 1 != 0)).to_numpy())
        if row is not None:
            raise table.error(f"{what} is not a whole number", row, _as_written(raw, row))
    row = first_true((values < low).to_numpy())
    if row is not None:
        word = "negative" if low == 0 else f"below {low}"
        raise table.error(f"{what} is {word}", row, _as_written(raw, row))
    # Floats at this magnitude round up to 2**63, so compare with >= for them.
    too_big = values >= float(high) + 1 if values.dtype.kind == "f" else values > high
    row = first_true(too_big.to_numpy())
    if row is not None:
        raise table.error(f"{what} is larger than {high}", row, _as_written(raw, row))
    return values


def ids(table: Table, column: str, what: str) -> np.ndarray:
    """A required id column: whole numbers from 0 to 2**63-1 (PostgreSQL bigint)."""
    return _whole(table, column, what, 0, MAX_ID, required=True).to_numpy(np.int64)


def optional_ints(
    table: Table, column: str, what: str, low: int, high: int
) -> pd.arrays.IntegerArray:
    """A nullable whole-number column (ages, years); empty fields become NA."""
    values = _whole(table, column, what, low, high, required=False)
    return pd.array(values, dtype="Int64")


def codes(table: Table, column: str, what: str, names: Sequence[str]) -> np.ndarray:
    """Map required integer codes 0..len(names)-1 to their names."""
    values = _whole(table, column, what, 0, len(names) - 1, required=True)
    return np.asarray(names, dtype=object)[values.to_numpy(np.int64)]


def ratings(table: Table, column: str) -> np.ndarray:
    """Required ratings within the stars ``ratings`` accepts (its CHECK constraint)."""
    raw = table.columns[column]
    values = numbers(table, column, "rating", required=True).to_numpy(np.float64)
    row = first_true((values < MIN_RATING) | (values > MAX_RATING))
    if row is not None:
        raise table.error(
            f"rating is outside {MIN_RATING}..{MAX_RATING}", row, _as_written(raw, row)
        )
    return values


def unix_times(table: Table, column: str) -> pd.Series:
    """Required unix-second timestamps as UTC datetimes."""
    raw = table.columns[column]
    seconds = numbers(table, column, "timestamp", required=True)
    bounds = (_EARLIEST.timestamp(), _LATEST.timestamp())
    row = first_true(
        ~np.isfinite(seconds.to_numpy(np.float64)) | ~seconds.between(*bounds).to_numpy()
    )
    if row is not None:
        raise table.error("timestamp is out of range for unix seconds", row, _as_written(raw, row))
    return pd.to_datetime(seconds, unit="s", utc=True).astype(UTC_NS)


def timestamps(table: Table, column: str) -> pd.Series:
    """Required timestamps: unix seconds, or ISO 8601 if the first value is not a number."""
    return timestamp_reader(table, column)(table, column)


def timestamp_reader(table: Table, column: str) -> Callable[[Table, str], pd.Series]:
    """:func:`unix_times`, or :func:`iso_times` if the column's first value is not a number.

    One form per file: mixing them is more likely a broken export than intent, so a file read in
    chunks keeps the reader its first chunk chose.
    """
    raw = table.columns[column]
    head = pd.to_numeric(raw.dropna().iloc[:1], errors="coerce")
    if pd.api.types.is_numeric_dtype(raw) or head.notna().all():
        return unix_times
    return iso_times


def iso_times(table: Table, column: str) -> pd.Series:
    """Required ISO 8601 timestamps as UTC datetimes."""
    raw = table.columns[column]
    row = first_true(raw.isna().to_numpy())
    if row is not None:
        raise table.error("timestamp is missing", row, "")
    if pd.api.types.is_numeric_dtype(raw):  # a later chunk holding only numbers
        raise table.error(
            "timestamp is not ISO 8601 like the first one", 0, str(_as_written(raw, 0))
        )
    parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    row = first_true((parsed.isna() | (parsed < _EARLIEST) | (parsed > _LATEST)).to_numpy())
    if row is not None:
        raise table.error(
            "timestamp is not ISO 8601 like the first one", row, _as_written(raw, row)
        )
    return parsed.astype(UTC_NS)


def check_header(table: Table, required: Collection[str], optional: Collection[str] = ()) -> None:
    """Reject a header lacking a required column or naming unknown ones."""
    header = table.header or ()
    expected = ", ".join([*required, *optional])
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (expected {expected})",
            table.source,
            1,
            ",".join(header),
        )
    unknown = [name for name in header if name not in required and name not in optional]
    if unknown:
        raise InputError(
            f"unknown column(s) (expected {expected})", table.source, 1, ",".join(unknown)
        )


def distinct(frame: pd.DataFrame, key: Sequence[str], what: str, source: str) -> pd.DataFrame:
    """Collapse exact repeats of a key; a repeat with other values is an error.

    ``frame`` needs a ``line`` column; a ``genres`` list is compared by its joined text.
    """
    key = list(key)
    repeated = frame.duplicated(key, keep=False).to_numpy()
    if not repeated.any():
        return frame
    rows = frame[repeated].drop(columns="line")
    if "genres" in rows:
        rows = rows.assign(genres=rows["genres"].map("|".join))
    versions = rows.drop_duplicates()
    clash = first_true(versions.duplicated(key).to_numpy())
    if clash is not None:
        at = versions.index[clash]
        value = frame.loc[at, key].tolist()
        same = frame[key].eq(frame.loc[at, key]).all(axis=1)
        first = frame.loc[same, "line"].min()
        shown = value[0] if len(value) == 1 else tuple(value)
        raise repeat_error(what, first, source, frame.loc[at, "line"], shown)
    return frame.drop_duplicates(key).reset_index(drop=True)


def repeat_error(what: str, first: int, source: str, line: int, value: object) -> InputError:
    """The error for a key at ``line`` that ``first`` gave other values."""
    return InputError(f"{what} repeats line {first} with different values", source, line, value)


def known(
    frame: pd.DataFrame, column: str, ids_in_file: np.ndarray, what: str, source: str, other: str
) -> None:
    """Every id in ``frame[column]`` must be one of ``ids_in_file`` (the ``other`` file's)."""
    row = first_true(~np.isin(frame[column].to_numpy(), ids_in_file))
    if row is not None:
        raise InputError(
            f"{what} is not in {other}", source, frame["line"].iloc[row], frame[column].iloc[row]
        )


def flags(table: Table, column: str, what: str) -> np.ndarray:
    """A required 0/1 column as booleans."""
    return _whole(table, column, what, 0, 1, required=True).to_numpy() == 1


def texts(table: Table, column: str, what: str, required: bool) -> pd.Series:
    """A text column with surrounding blanks removed; NaN where empty."""
    values = table.columns[column].astype("str").str.strip()
    values = values.mask(values == "")
    if required and (row := first_true(values.isna().to_numpy())) is not None:
        raise table.error(f"{what} is missing", row, "")
    return values
