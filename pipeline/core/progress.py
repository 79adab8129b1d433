"""Rich progress bars with rate and ETA, shared by every long-running loop."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class _Rate(TextColumn):
    """Items per second over the run so far (completed / elapsed).

    Not rich's own speed, an average over the last few updates: results of a worker pool or a Ray
    actor arrive in bursts, and a burst of 8 within microseconds read as 155,462 posters/s."""

    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task):  # type: ignore[override]
        from rich.text import Text

        elapsed = task.finished_time if task.finished else task.elapsed
        if not task.completed or not elapsed:
            return Text(f"-- {self.unit}/s")
        return Text(f"{task.completed / elapsed:.2f} {self.unit}/s")


def progress_bar(unit: str = "posters") -> Progress:
    """A progress bar on stderr, so stdout stays clean for results (``predict --format json``)."""
    from rich.console import Console

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def track(items: Iterable[T], total: int, description: str, unit: str = "posters") -> Iterator[T]:
    """Iterate ``items`` with a progress bar (rate and ETA)."""
    with progress_bar(unit) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
