"""The checks ``ingest csv`` makes on each value, made on rows staged from a SQL source.

Each staged table is scanned once: a ``CASE`` names the first check a row fails, and the first
failing row (in the order the source gave them) becomes an InputError naming its key and value.
"""

import sqlalchemy as sa
from psycopg import sql

from recsys.ingest.errors import InputError
from recsys.ingest.sql.columns import FIELDS, Field, Mapping
from recsys.storage.bulk import driver_connection
from recsys.storage.schema import MAX_RATING, MIN_RATING

_INTEGER_TYPES = ("smallint", "integer", "bigint")
#: The key columns that name a row of each kind in messages.
KEYS = {"ratings": ("user_id", "movie_id"), "users": ("user_id",), "movies": ("movie_id",)}


def _checks(field: Field, mapping: Mapping) -> list[tuple[sql.Composable, str]]:
    """(condition on the staged column, what is wrong) for each check of ``field``."""
    column = sql.Identifier(field.name)
    checks: list[tuple[sql.Composable, str]] = []
    if field.required:
        checks.append((sql.SQL("{} IS NULL").format(column), "is missing"))
    if field.kind in ("id", "whole"):
        if mapping.columns[field.name].type_name not in _INTEGER_TYPES:
            checks.append((sql.SQL("{c} <> trunc({c})").format(c=column), "is not a whole number"))
        checks.append((sql.SQL("{} < {}").format(column, sql.Literal(field.low)), _below(field)))
        checks.append(
            (
                sql.SQL("{} > {}").format(column, sql.Literal(field.high)),
                f"is larger than {field.high}",
            )
        )
    if field.kind == "rating":
        # NaN sorts above every number in PostgreSQL, so it fails the upper bound.
        checks.append(
            (
                sql.SQL("{c} < {low} OR {c} > {high}").format(
                    c=column, low=sql.Literal(MIN_RATING), high=sql.Literal(MAX_RATING)
                ),
                f"is outside {MIN_RATING}..{MAX_RATING}",
            )
        )
    return checks


def _below(field: Field) -> str:
    return "is negative" if field.low == 0 else f"is below {field.low}"


def check_values(conn: sa.Connection, kind: str, mapping: Mapping, table: str) -> None:
    """Raise InputError at the first row of staged ``table`` that fails a check of ``kind``."""
    failures: list[tuple[Field, str]] = []
    whens: list[sql.Composable] = []
    for field in FIELDS[kind]:
        if not mapping.has(field.name):
            continue
        for condition, problem in _checks(field, mapping):
            failures.append((field, problem))
            whens.append(
                sql.SQL("WHEN {} THEN {}").format(condition, sql.Literal(len(failures) - 1))
            )
    if not whens:
        return
    keys = KEYS[kind]
    statement = sql.SQL(
        "SELECT failed, {keys}, {values} FROM (SELECT *, CASE {whens} END AS failed FROM {t}) c"
        " WHERE failed IS NOT NULL ORDER BY line LIMIT 1"
    ).format(
        keys=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in keys),
        values=sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(f.name)) for f, _ in failures
        ),
        whens=sql.SQL(" ").join(whens),
        t=sql.Identifier(table),
    )
    row = driver_connection(conn).cursor().execute(statement).fetchone()
    if row is None:
        return
    failed = row[0]
    field, problem = failures[failed]
    key_values = row[1 : 1 + len(keys)]
    value = row[1 + len(keys) + failed]
    raise row_error(
        mapping, keys, key_values, f"{mapping.columns[field.name].name} {problem}", value
    )


def row_error(
    mapping: Mapping,
    keys: tuple[str, ...],
    key_values: tuple[object, ...],
    problem: str,
    value: object = None,
) -> InputError:
    """An InputError for the row with these key values, keys shown by the source's names."""
    shown = ", ".join(
        f"{mapping.columns[k].name} {'NULL' if v is None else v}"
        for k, v in zip(keys, key_values, strict=True)
    )
    return InputError(f"row with {shown}: {problem}", mapping.label, value=value)
