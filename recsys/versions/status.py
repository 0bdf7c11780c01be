"""A version's status: what the registry writes and what ``versions`` reads back.

``running`` → ``published`` | ``failed``. ``stale`` is never stored: it is how a reader shows a
``running`` version whose run holds no lock any more (its process died).
"""

from enum import StrEnum


class VersionStatus(StrEnum):
    RUNNING = "running"
    PUBLISHED = "published"
    FAILED = "failed"
    STALE = "stale"  # read side only

    @classmethod
    def stored(cls) -> tuple["VersionStatus", ...]:
        """The values a registry row may hold (its CHECK constraint)."""
        return (cls.RUNNING, cls.PUBLISHED, cls.FAILED)


class RunStatus(StrEnum):
    """One attempt at a version (``version_runs``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
