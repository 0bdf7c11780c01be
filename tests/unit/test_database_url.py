"""How a database URL is shown to a person: a password never, and an empty one not as ``***``.

libpq URLs often carry an empty password (``user:@host``; the embedded server's always does).
Shown as ``user:***@host`` it would suggest a secret that is not there, so it is dropped instead.
"""

import pytest

from recsys.storage.database import masked, parse_url

SHOWN = {
    "postgresql://postgres:@/postgres?host=%2Ftmp%2Fpg": "postgresql://postgres@/postgres?host=%2Ftmp%2Fpg",
    "postgresql://me:@db.example:5432/app": "postgresql://me@db.example:5432/app",
    "postgresql://me@db.example/app": "postgresql://me@db.example/app",
    "postgresql://me:s3cret@db.example/app": "postgresql://me:***@db.example/app",
    "postgresql://me@db.example/app?password=s3cret": "postgresql://me@db.example/app?password=%2A%2A%2A",
    "postgresql+psycopg://me:@db.example/app": "postgresql://me@db.example/app",
}  # fmt: skip


@pytest.mark.parametrize("raw", SHOWN)
def test_a_url_is_shown_without_its_password(raw: str) -> None:
    assert masked(parse_url(raw)) == SHOWN[raw]


def test_an_empty_password_is_no_password_when_connecting() -> None:
    """Dropped from the URL, not only from what is shown; the driver stays psycopg 3."""
    url = parse_url("postgresql://me:@db.example/app")
    assert url.password is None
    assert url.drivername == "postgresql+psycopg"
