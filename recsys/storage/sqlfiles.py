"""The files under ``sql/``, read from the installed ``recsys_sql`` package.

Migrations create the views from these files and the CLI runs the example queries from them, so
what analysts read is what the product runs. Files use unqualified table names (resolved through
``search_path``, which :func:`use_schema` points at the configured schema) and psql variables:
``:name`` for numbers, ``:'name'`` for strings. :func:`query` turns both into SQLAlchemy binds.
"""

import re
from collections.abc import Mapping, Sequence
from importlib import resources

import sqlalchemy as sa
from psycopg import sql

from recsys.storage.bulk import driver_connection, schema_of

_QUOTED_VARIABLE = re.compile(r":'(\w+)'")


def read(path: str) -> str:
    """A file's text, ``path`` relative to ``sql/`` (e.g. ``views/alias_history.sql``)."""
    return resources.files("recsys_sql").joinpath(path).read_text(encoding="utf-8")


def names(folder: str) -> list[str]:
    """The ``.sql`` files in a folder of ``sql/``, without the suffix, sorted."""
    entries = resources.files("recsys_sql").joinpath(folder).iterdir()
    return sorted(e.name.removesuffix(".sql") for e in entries if e.name.endswith(".sql"))


def query(name: str) -> sa.TextClause:
    """The example query ``sql/examples/<name>.sql`` with its psql variables as bind parameters."""
    return sa.text(_QUOTED_VARIABLE.sub(r":\1", read(f"examples/{name}.sql")))


def use_schema(conn: sa.Connection) -> None:
    """Resolve unqualified names to the configured schema until this transaction ends."""
    conn.execute(sa.select(sa.func.set_config("search_path", schema_of(conn), True)))


def create_views(
    conn: sa.Connection, views: Sequence[str], variables: Mapping[str, str | None] | None = None
) -> None:
    """Create (or replace) views from ``sql/views/<name>.sql`` in the configured schema. A
    ``:'name'`` in a view file becomes the literal ``variables[name]`` (NULL when not given)."""
    variables = variables or {}
    raw = driver_connection(conn)
    texts = [
        _QUOTED_VARIABLE.sub(
            lambda m: sql.Literal(variables.get(m[1])).as_string(raw), read(f"views/{view}.sql")
        )
        for view in views
    ]
    execute_in_schema(conn, texts)


def execute_in_schema(conn: sa.Connection, statements: Sequence[str]) -> None:
    """Run ``statements`` (view definitions) with unqualified names resolving to the configured
    schema. Names in a view are bound to objects when it is created, so the view keeps reading
    this schema whatever ``search_path`` its readers have."""
    previous = conn.execute(sa.select(sa.func.current_setting("search_path"))).scalar_one()
    use_schema(conn)
    for statement in statements:
        conn.exec_driver_sql(statement)
    conn.execute(sa.select(sa.func.set_config("search_path", previous, True)))


def drop_views(conn: sa.Connection, views: Sequence[str]) -> None:
    """Drop these views of the configured schema, if they exist."""
    cursor = driver_connection(conn).cursor()
    for view in views:
        cursor.execute(
            sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(schema_of(conn), view))
        )
