"""Which columns of a SQL source feed which input column, and the SQL that converts each.

Columns are matched by the names ``ingest csv`` reads (``item_id`` or ``movie_id``, ``timestamp``
or ``rated_at``); a column recsys does not know is refused, as in a CSV header, so a misspelt
``rating`` cannot silently become "no ratings". Types are checked here from the source's
description, before any row is read; values are checked once staged
(:mod:`recsys.ingest.sql.checks`).
"""

from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from recsys.ingest.errors import InputError

Kind = Literal["id", "rating", "time", "text", "whole", "genres"]


@dataclass(frozen=True)
class SourceColumn:
    """A column of the source as PostgreSQL describes it."""

    name: str
    type_name: str  # format_type(): valid SQL for a cast
    category: str  # pg_type.typcategory: N numeric, S string, D date/time, A array


@dataclass(frozen=True)
class Field:
    """An input column: the names it may have in a source, and how its values are checked."""

    name: str
    accepts: tuple[str, ...]
    kind: Kind
    required: bool = False
    low: int = 0
    high: int = 2**63 - 1


FIELDS: dict[str, tuple[Field, ...]] = {
    "ratings": (
        Field("user_id", ("user_id",), "id", required=True),
        Field("movie_id", ("item_id", "movie_id"), "id", required=True),
        Field("rating", ("rating",), "rating"),
        Field("rated_at", ("timestamp", "rated_at"), "time"),
    ),
    "users": (
        Field("user_id", ("user_id",), "id", required=True),
        Field("gender", ("gender",), "text"),
        Field("age", ("age",), "whole", high=150),
        Field("occupation", ("occupation",), "text"),
        Field("zip_code", ("zip_code",), "text"),
    ),
    "movies": (
        Field("movie_id", ("movie_id", "item_id"), "id", required=True),
        Field("title", ("title",), "text", required=True),
        Field("genres", ("genres",), "genres"),
        Field("year", ("year",), "whole", low=1, high=9999),
    ),
}
_CATEGORIES: dict[Kind, str] = {
    "id": "N",
    "whole": "N",
    "rating": "N",
    "time": "DN",
    "text": "S",
    "genres": "SA",
}
_NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class Mapping:
    """The source column feeding each input column the source has (by input column name)."""

    label: str
    columns: dict[str, SourceColumn]

    def has(self, field: str) -> bool:
        return field in self.columns

    def raw(self, field: str) -> sql.Composable:
        """The source's column, as ``s.<name>``."""
        return sql.Identifier("s", self.columns[field].name)

    def staged(self, field: Field) -> sql.Composable:
        """SQL turning the source's value into what staging keeps: ids and whole numbers as they
        are (checked once staged), ratings as float8, times as timestamptz (a time without zone
        is UTC, a number unix seconds), text trimmed with blanks as NULL, genres as text[]."""
        column = self.columns[field.name]
        raw = self.raw(field.name)
        if field.kind == "rating":
            return sql.SQL("CAST({} AS float8)").format(raw)
        if field.kind == "time":
            if column.category == "N":
                return sql.SQL("to_timestamp(CAST({} AS float8))").format(raw)
            if column.type_name == "timestamp with time zone":
                return raw
            return sql.SQL("CAST({} AS timestamp) AT TIME ZONE 'UTC'").format(raw)
        if field.kind == "text":
            return sql.SQL("NULLIF(btrim(CAST({} AS text)), '')").format(raw)
        if field.kind == "genres":
            if column.category == "A":
                return sql.SQL("CAST({} AS text[])").format(raw)
            text = sql.SQL("btrim({})").format(raw)
            return sql.SQL(
                "CASE WHEN {t} IS NULL OR {t} IN ('', {none}) THEN '{{}}'::text[]"
                " ELSE string_to_array({t}, '|') END"
            ).format(t=text, none=sql.Literal(_NO_GENRES))
        return raw


def mapping(kind: str, label: str, described: list[SourceColumn], extra: str | None) -> Mapping:
    """Match ``described`` to the fields of ``kind``; ``extra`` names a column the caller reads
    besides (the watermark). Raises InputError naming what is missing, repeated, unknown or of a
    type the field cannot take."""
    fields = FIELDS[kind]
    by_name = {c.name: c for c in described}
    expected = ", ".join("|".join(f.accepts) for f in fields)
    found: dict[str, SourceColumn] = {}
    for field in fields:
        present = [name for name in field.accepts if name in by_name]
        if len(present) > 1:
            raise InputError(f"both {' and '.join(present)}: give one", label)
        if not present:
            if field.required:
                raise InputError(
                    f"no column {' or '.join(field.accepts)} (expected {expected})",
                    label,
                    value=",".join(by_name),
                )
            continue
        column = by_name[present[0]]
        if column.category not in _CATEGORIES[field.kind]:
            raise InputError(
                f"column {column.name} is {column.type_name}; cast it in the query to "
                f"{_wanted(field.kind)}",
                label,
            )
        found[field.name] = column
    known = {c.name for c in found.values()} | {extra}
    unknown = [name for name in by_name if name not in known]
    if unknown:
        raise InputError(f"unknown column(s) (expected {expected})", label, value=",".join(unknown))
    return Mapping(label, found)


def _wanted(kind: Kind) -> str:
    return {
        "id": "bigint",
        "whole": "integer",
        "rating": "a number",
        "time": "timestamptz (or unix seconds)",
        "text": "text",
        "genres": "text ('A|B') or text[]",
    }[kind]
