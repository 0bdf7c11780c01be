"""Version and alias names: what is allowed, and the advisory-lock key that serialises work on
each name (schema-qualified, so two recsys schemas in one database never share a lock)."""

import re
from typing import Literal

import sqlalchemy as sa

from recsys.errors import InvalidInput
from recsys.storage import schema
from recsys.storage.bulk import schema_of

Kind = Literal["version", "alias"]

#: Names become SQL literals in partition bounds and appear in file names; keep them tame.
_ALLOWED = re.compile(schema.VERSION_NAME_PATTERN)


def validate(name: str, kind: Kind = "version") -> str:
    """Reject names the registry's CHECK constraint would, before anything is written."""
    if not _ALLOWED.fullmatch(name):
        what = "version name" if kind == "version" else kind
        raise InvalidInput(
            f"{what} {name!r} is not allowed: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def lock_text(conn: sa.Connection, name: str, kind: Kind = "version") -> str:
    """What the advisory-lock key of ``name`` is hashed from."""
    return f"recsys:{schema_of(conn)}:{kind}:{name}"


def lock_key(conn: sa.Connection, name: str, kind: Kind = "version") -> sa.ColumnElement[int]:
    """The advisory-lock key of a version or alias name on this connection's schema."""
    return sa.func.hashtextextended(lock_text(conn, name, kind), 0)
