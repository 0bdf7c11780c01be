"""Progress bars that only appear for work that takes more than a couple of seconds."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(
    description: str, total: int | None = None, unit: str = "rows"
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback; the bar shows on a terminal after two seconds."""
    with tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=True,
        delay=2.0,
        disable=None,
        leave=False,
    ) as bar:
        yield bar.update
