"""Read-only access for analysts: a role that can SELECT everything in the schema and nothing else.

Granted: USAGE on the schema and SELECT on every table and view in it (inputs, registry, outputs
and their partitions, the views), except ``erasure_salt``. A query on a partitioned output checks
only the parent's privileges, so the views and the output tables work for every version, later
ones included; for direct reads of a partition (``recommendations_r12``) published later, default
privileges give SELECT on every table the granting user creates in the schema from now on — so run
this as the database user the jobs run as. Nothing else is granted: no INSERT, UPDATE, DELETE,
TRUNCATE, and no CREATE on the schema. The role itself (LOGIN, password) is the DBA's to create.
"""

import sqlalchemy as sa
from psycopg import sql

from recsys.errors import RecsysError
from recsys.storage import schema
from recsys.storage.bulk import driver_connection, schema_of


def grant_reader(conn: sa.Connection, role: str) -> str:
    """Give ``role`` read-only access to the schema; returns the user whose new tables it covers."""
    if not conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :role)"), {"role": role}
    ).scalar():
        raise RecsysError(f"role {role!r} does not exist; create it first (CREATE ROLE ... LOGIN)")
    namespace, grantee = sql.Identifier(schema_of(conn)), sql.Identifier(role)
    cursor = driver_connection(conn).cursor()
    for statement in (
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
        # With the salt, a guessed user id could be tested against the erasure audit.
        "REVOKE SELECT ON {salt} FROM {role}",
    ):
        salt = sql.Identifier(schema_of(conn), schema.erasure_salt.name)
        cursor.execute(sql.SQL(statement).format(schema=namespace, role=grantee, salt=salt))
    return conn.execute(sa.select(sa.func.current_user())).scalar_one()
