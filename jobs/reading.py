"""What the commands that read one published list share (``recommend``, ``similar``): the choice
of a version or an alias, and the heading that says how an alias resolved."""

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def version_or_alias(command: F) -> F:
    """``--version V`` or ``--alias A`` (default: production, else the latest published)."""
    command = click.option(
        "--alias", help="An alias (default: production, else the latest published)."
    )(command)
    return click.option("--version", help="A published version.")(command)


def check_version_or_alias(version: str | None, alias: str | None) -> None:
    if version and alias:
        raise click.UsageError("give --version or --alias, not both")


def resolved_from(version: str, alias: str | None, resolved_by: str | None) -> str:
    """``version v3 (alias production)``; ``(alias production not set: latest published)`` when
    production fell back to the latest published version."""
    if not alias:
        return f"version {version}"
    how = "" if resolved_by == "alias" else f" not set: {resolved_by}"
    return f"version {version} (alias {alias}{how})"
