"""Errors the job reports to its user, each with the process exit code the CLI uses for it.

Distinct exit codes let a scheduler tell "fix the input" from "the database is down" without
parsing messages.
"""

#: Exit status of ``run --promote ... --if-better ...`` that published its version but did not
#: promote it (it did not beat the champion, or no fair comparison was possible): not a failure,
#: a decision a scheduler can branch on. The codes of the errors below are 1-7.
PUBLISHED_NOT_PROMOTED = 8


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
