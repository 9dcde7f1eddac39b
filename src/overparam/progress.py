"""Progress bars on a terminal (rich), silence elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def step_progress(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """Yields ``update(done, total)`` drawing a rich bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        last = [0]

        def update(done: int, total: int) -> None:
            if done - last[0] >= 16 or done == total:
                bar.update(task, completed=done, total=total)
                last[0] = done

        yield update
