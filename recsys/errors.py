"""Errors the job reports to its user, each with the process exit code the CLI uses for it.

Distinct exit codes let a scheduler tell "fix the input" from "the database is down" without
parsing messages.
"""


class RecsysError(Exception):
    """An expected failure with a message meant for the person running the job."""

    exit_code = 1


class InvalidInput(RecsysError):
    """Input the job cannot use: a file, an option or a name, or data the options do not fit.
    Nothing was written; fix the input and run again."""

    exit_code = 2


class DatabaseUnavailable(RecsysError):
    """The database server cannot be reached or refuses the connection."""

    exit_code = 3


class SchemaNotAtHead(RecsysError):
    """The schema's migration revision is not the one this code was written for."""

    exit_code = 4


class VersionConflict(RecsysError):
    """A model version exists already, or another run holds it."""

    exit_code = 5


class ConnectionLost(RecsysError):
    """The database connection broke mid-command (session terminated, server restarted, network)."""

    exit_code = 6


class DatabaseTimeout(RecsysError):
    """A statement ran past the statement timeout, or waited past the lock timeout."""

    exit_code = 7
