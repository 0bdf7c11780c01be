"""What every command shares: the chosen database, announced once, and the at-head check."""

from dataclasses import dataclass, field

import click
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.storage import database, migrate


@dataclass
class JobContext:
    """Resolves the database lazily so ``--help`` and argument errors never start a server."""

    database_url: str | None
    schema_option: str | None
    timeouts: database.Timeouts = field(default_factory=database.Timeouts)
    #: The resolved URL, once known: error messages scrub its password.
    url: URL | None = field(default=None, init=False)
    _engine: sa.Engine | None = field(default=None, init=False)

    @property
    def schema(self) -> str:
        return database.schema_name(self.schema_option)

    def engine(self, *, require_head: bool = True) -> sa.Engine:
        """Connect (once), say which database is in use, and check the schema revision."""
        if self._engine is None:
            schema = self.schema
            target = database.resolve(self.database_url)
            self.url = target.url
            click.echo(f"database: {target.describe()}, schema {schema}", err=True)
            self._engine = database.connect(target.url, schema, timeouts=self.timeouts)
        if require_head:
            migrate.require_head(self._engine, self.schema)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_job = click.make_pass_decorator(JobContext)
