"""Alembic environment: runs migrations inside the configured recsys schema.

Called from :mod:`recsys.storage.migrate` with a connection and schema in ``config.attributes``;
from the ``alembic`` command line it connects to ``RECSYS_DATABASE_URL`` (or ``sqlalchemy.url`` in
alembic.ini) and uses ``RECSYS_SCHEMA`` (default ``recsys``).
"""

import os

import sqlalchemy as sa
from alembic import context

from recsys.storage.database import SCHEMA_PLACEHOLDER, parse_url, schema_name
from recsys.storage.migrate import VERSION_TABLE
from recsys.storage.schema import metadata

config = context.config


def _run(connection: sa.Connection, schema: str) -> None:
    connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    connection = connection.execution_options(schema_translate_map={SCHEMA_PLACEHOLDER: schema})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    schema = config.attributes.get("schema") or schema_name()
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, schema)
        return
    raw = os.environ.get("RECSYS_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not raw:
        raise SystemExit("set RECSYS_DATABASE_URL (or sqlalchemy.url in alembic.ini)")
    engine = sa.create_engine(parse_url(raw))
    with engine.begin() as conn:
        _run(conn, schema)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
