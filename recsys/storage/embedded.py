"""The embedded PostgreSQL used when no database URL is given.

`pgserver` ships real PostgreSQL binaries in a wheel, so a first-time user needs no server to try
the product. The data directory lives under ``RECSYS_HOME`` (default ``~/.local/share/recsys``) so
that what one command loads the next one finds.
"""

import os
import warnings
from pathlib import Path


def recsys_home() -> Path:
    """Per-user directory for the embedded database (``RECSYS_HOME`` overrides)."""
    configured = os.environ.get("RECSYS_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".local" / "share" / "recsys"


def embedded_url(pgdata: Path | None = None) -> str:
    """Start (or join) the embedded server and return its libpq URL.

    The server stops when the last process using it exits.
    """
    directory = pgdata or recsys_home() / "pgdata"
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers); its fallback works.
        warnings.simplefilter("ignore")
        import pgserver  # imported here: only this path needs it

        server = pgserver.get_server(directory, cleanup_mode="stop")
    return server.get_uri()
