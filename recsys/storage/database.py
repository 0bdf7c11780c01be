"""Which database the job talks to, and how it connects.

Precedence: an explicit URL (``--database-url``), then ``RECSYS_DATABASE_URL``, then the embedded
server. Plain ``postgresql://`` URLs are accepted and mapped to the psycopg 3 driver. Anything that
shows a URL to a person goes through :func:`masked` so that a password never reaches output or logs,
and a database error reaches the person as :func:`failure`'s one line, scrubbed the same way.
"""

import os
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from recsys.errors import (
    ConnectionLost,
    DatabaseTimeout,
    DatabaseUnavailable,
    InvalidInput,
    RecsysError,
)

DEFAULT_SCHEMA = "recsys"
#: Seconds a statement may queue for a lock unless told otherwise. Unbounded, a publish or prune
#: stuck behind one long transaction would also hold up every reader queued behind it.
DEFAULT_LOCK_TIMEOUT = 60.0
#: Name the Table objects in :mod:`recsys.storage.schema` carry; translated to the configured
#: schema.
SCHEMA_PLACEHOLDER = DEFAULT_SCHEMA


@dataclass(frozen=True)
class DatabaseTarget:
    """A resolved database URL and where it came from (for the "using ..." line)."""

    url: URL
    source: str

    def describe(self) -> str:
        return f"{masked(self.url)} ({self.source})"


def parse_url(raw: str) -> URL:
    """Parse a database URL, forcing the psycopg 3 driver for PostgreSQL URLs."""
    try:
        url = make_url(raw)
    except Exception as exc:  # SQLAlchemy raises ArgumentError; never echo the raw URL
        raise InvalidInput(
            "the database URL is not valid (expected postgresql://user@host:port/dbname)"
        ) from exc
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidInput(f"only PostgreSQL is supported, not {url.get_backend_name()!r}")
    if url.password == "":
        url = url._replace(password=None)  # URL.set treats None as "unchanged"
    return url.set(drivername="postgresql+psycopg")


def masked(url: URL) -> str:
    """The URL as the user would write it, with any password replaced by ``***``.

    libpq also takes a password as a ``?password=`` query parameter; that is masked too.
    """
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def has_password(url: URL) -> bool:
    """Whether the URL carries a password (in its user part or as ``?password=``)."""
    return bool(url.password) or "password" in url.query


def resolve(explicit: str | None) -> DatabaseTarget:
    """Pick the database by the documented precedence, starting the embedded one if needed."""
    if explicit:
        return DatabaseTarget(parse_url(explicit), "--database-url")
    from_env = os.environ.get("RECSYS_DATABASE_URL")
    if from_env:
        return DatabaseTarget(parse_url(from_env), "RECSYS_DATABASE_URL")
    from recsys.storage.embedded import embedded_url, recsys_home

    return DatabaseTarget(parse_url(embedded_url()), f"embedded PostgreSQL in {recsys_home()}")


def schema_name(explicit: str | None = None) -> str:
    """The schema holding every recsys object (``--schema``, ``RECSYS_SCHEMA``, or ``recsys``)."""
    name = explicit or os.environ.get("RECSYS_SCHEMA") or DEFAULT_SCHEMA
    if not name.isidentifier() or name != name.lower() or name.startswith("pg_"):
        raise InvalidInput(
            f"schema name {name!r} is not allowed: use lower-case letters, digits and underscores"
        )
    return name


@dataclass(frozen=True)
class Timeouts:
    """Server-side limits for every connection, in seconds: 0 is none, None the server's own."""

    statement: float | None = None
    lock: float | None = DEFAULT_LOCK_TIMEOUT

    def options(self) -> str:
        """The ``-c`` settings for libpq's ``options`` (milliseconds; never rounded down to 0)."""
        settings = {"statement_timeout": self.statement, "lock_timeout": self.lock}
        return " ".join(
            f"-c {name}={max(1, round(seconds * 1000)) if seconds else 0}"
            for name, seconds in settings.items()
            if seconds is not None
        )


def connect(
    url: URL,
    schema: str,
    *,
    application_name: str = "recsys-job",
    timeouts: Timeouts = Timeouts(),
) -> Engine:
    """An engine whose Table objects resolve to ``schema``; fails fast if the server is down.

    The timeouts go after any ``options`` the URL itself carries, so they win over those.
    """
    given = url.query.get("options")
    options = " ".join(
        part for part in (given, timeouts.options()) if isinstance(part, str) and part
    )
    engine = sa.create_engine(
        url,
        connect_args={
            "application_name": application_name,
            "connect_timeout": 10,
            **({"options": options} if options else {}),
        },
        pool_pre_ping=True,
    ).execution_options(schema_translate_map={SCHEMA_PLACEHOLDER: schema})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot connect to {masked(url)}: {_reason(exc, url)}") from None
    return engine


@dataclass(frozen=True, repr=False)
class EngineSpec:
    """What another process needs to connect as an engine of this one does (a Ray worker that
    writes a shard): the URL, the schema and the timeouts.

    Its repr and str mask the password, so logging it, or Ray showing it, gives nothing away;
    the password itself travels only pickled, in the object that carries it.
    """

    url: URL
    schema: str
    timeouts: Timeouts

    @classmethod
    def of(cls, engine: Engine) -> "EngineSpec":
        """The spec of ``engine`` (from :func:`connect`), with the timeouts its sessions have."""
        translate = engine.get_execution_options().get("schema_translate_map") or {}
        with engine.connect() as conn:
            settings = dict(
                conn.execute(
                    sa.text(
                        "SELECT name, setting::int FROM pg_settings"
                        " WHERE name IN ('statement_timeout', 'lock_timeout')"
                    )
                ).all()
            )
        timeouts = Timeouts(settings["statement_timeout"] / 1000, settings["lock_timeout"] / 1000)
        return cls(engine.url, translate.get(SCHEMA_PLACEHOLDER, SCHEMA_PLACEHOLDER), timeouts)

    def connect(self, application_name: str) -> Engine:
        return connect(
            self.url, self.schema, application_name=application_name, timeouts=self.timeouts
        )

    def __repr__(self) -> str:
        return f"EngineSpec({masked(self.url)}, schema={self.schema!r})"

    __str__ = __repr__


def failure(exc: sa.exc.DBAPIError | psycopg.Error, url: URL | None) -> RecsysError:
    """A database error as one line for a person, and the error class that gives its exit code.

    Errors arrive wrapped by SQLAlchemy or, from COPY and DDL on the raw driver connection, as
    psycopg's own; both are classified by the driver error underneath.
    """
    reason = _reason(exc, url)
    driver = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(driver, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return DatabaseTimeout(
            f"database timeout: {reason} (see --lock-timeout and --statement-timeout)"
        )
    state = getattr(driver, "sqlstate", None)
    if getattr(exc, "connection_invalidated", False) or (
        isinstance(driver, psycopg.OperationalError)
        and (state is None or state.startswith(("08", "57P")))
    ):
        return ConnectionLost(f"lost the database connection: {reason}")
    return RecsysError(f"database error: {reason}")


def _reason(exc: sa.exc.DBAPIError | psycopg.Error, url: URL | None) -> str:
    """The driver's first line of complaint, with the password scrubbed should it appear."""
    driver = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    lines = str(driver).strip().splitlines()
    reason = lines[0] if lines else type(driver).__name__
    secrets = (url.password, url.query.get("password")) if url is not None else ()
    for secret in secrets:
        if isinstance(secret, str) and secret:
            reason = reason.replace(secret, "***")
    return reason
