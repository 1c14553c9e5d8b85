"""A bar of documents done, on stderr, for someone watching a run in a terminal.

Shown only when asked for (the `progress` parameter of the flows, which
`armsledger run` sets unless --json) and when stderr is a terminal; rich's
TTY_COMPATIBLE=1 or FORCE_COLOR=1 make it one for tests and CI logs. stdout is
never touched: JSON printed there stays clean.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text


class RateColumn(ProgressColumn):
    """Documents per second since the bar appeared (cached batches count: they are documents done)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.1f} docs/s", style="progress.data.speed")


@contextmanager
def document_progress(total: int, enabled: bool, description: str = "extracting") -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`, which moves the bar on by n documents of `total`; a no-op when not shown."""
    console = Console(stderr=True)
    if not enabled or total <= 0 or not console.is_terminal:
        yield lambda _done: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
        RateColumn(), TimeElapsedColumn(), console=console, redirect_stdout=False,
    )
    with bar, _log_lines_above(console):
        task_id = bar.add_task(description, total=total)
        yield lambda done: bar.advance(task_id, done)


@contextmanager
def _log_lines_above(console: Console) -> Iterator[None]:
    """Log handlers that write to stderr through a rich Console of their own (Prefect's console handler)
    print through the bar's console while it is shown, so that their lines appear above the bar instead
    of through it."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    swapped = []
    for handler in {h for logger in loggers for h in logger.handlers}:
        own = getattr(handler, "console", None)
        if isinstance(handler, logging.StreamHandler) and isinstance(own, Console) and (
            handler.stream in (sys.stderr, sys.__stderr__)
        ):
            swapped.append((handler, own))
            handler.console = console
    try:
        yield
    finally:
        for handler, own in swapped:
            handler.console = own
