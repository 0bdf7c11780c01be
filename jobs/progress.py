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


def epoch_bars() -> Callable[[int, int], None]:
    """A training ``on_step(done, total)`` callback: one bar per epoch (steps, rate, time left),
    shown on a terminal once an epoch has run two seconds and gone when it ends, so the line the
    run prints per epoch (all a log gets) follows a clean screen."""
    bar: tqdm | None = None
    epoch = 0

    def on_step(done: int, total: int) -> None:
        nonlocal bar, epoch
        if bar is None:
            epoch += 1
            bar = tqdm(desc=f"epoch {epoch}", unit="steps", delay=2.0, disable=None, leave=False)
        bar.total = total  # a time budget may re-plan an epoch's steps
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar = None

    return on_step


def count_bar(description: str, unit: str) -> Callable[[int, int], None]:
    """An ``on_progress(done, total)`` callback: one bar (count, rate, time left), shown on a
    terminal once the work has run two seconds and gone when it is done."""
    bar: tqdm | None = None

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total, desc=description, unit=unit, delay=2.0, disable=None, leave=False
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return on_progress
