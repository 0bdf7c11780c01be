"""Alembic, driven from code: upgrade, downgrade, current, and the at-head guard.

The migration scripts ship inside the distribution as the ``recsys_migrations`` package (the
repository's ``migrations/`` folder), so an installed job can migrate without a checkout.
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from recsys.errors import SchemaNotAtHead

VERSION_TABLE = "alembic_version"


def _script_location() -> str:
    import recsys_migrations

    return str(Path(recsys_migrations.__file__).parent)


def alembic_config(connection: sa.Connection | None = None, schema: str | None = None) -> Config:
    """A Config that hands ``connection`` and ``schema`` to ``migrations/env.py``."""
    config = Config()
    config.set_main_option("script_location", _script_location())
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine, schema: str) -> str | None:
    """The revision stamped in ``schema`` (None when never migrated)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table_schema": schema, "version_table": VERSION_TABLE}
        )
        return context.get_current_revision()


def upgrade(engine: Engine, schema: str, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn, schema), revision)


def downgrade(engine: Engine, schema: str, revision: str) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn, schema), revision)


def require_head(engine: Engine, schema: str) -> None:
    """Refuse to work on a schema this code does not match."""
    current = current_revision(engine, schema)
    head = head_revision()
    if current != head:
        found = f"at revision {current}" if current else "not created yet"
        raise SchemaNotAtHead(
            f"schema {schema!r} is {found}; this recsys expects {head}. "
            "Run `recsys-job db upgrade` first."
        )
