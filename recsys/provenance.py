"""Which code produced a version: recorded in the registry beside its settings."""

import subprocess
from pathlib import Path

import recsys


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    root = Path(recsys.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return recsys.__version__
    return f"{recsys.__version__}+{commit}" if commit else recsys.__version__
