"""The one exception every ingest parser raises for bad input, so callers can report it plainly."""

from pathlib import Path

import numpy as np

from recsys.errors import InvalidInput


class InputError(InvalidInput):
    """Bad input file.

    ``str()`` gives ``'<path>, line <n>: <message> (value: <repr value>)'`` with the parts that
    are None left out, so a user can open the file at the offending line.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        value: object = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = None if line is None else int(line)
        # numpy scalars repr as "np.int64(5)"; show the value as the file wrote it.
        self.value = value.item() if isinstance(value, np.generic) else value
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (self.path, None if self.line is None else f"line {self.line}") if part
        )
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            text += f" (value: {self.value!r})"
        return text
