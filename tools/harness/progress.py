"""Progress on stderr: one bar per phase (count, rate, time left) on a terminal; where stderr is not
one (CI, a log file) a plain line at each phase's start and end and every PLAIN_EVERY seconds, since
a redrawn bar would fill a log with carriage returns."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

PLAIN_EVERY = 15.0
# A bar's clock and time left move even while its count does not.
REDRAW_EVERY = 1.0
_COUNTED = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_UNCOUNTED = "{desc} [{elapsed}{postfix}]"


def say(message: str) -> None:
    """A line on stderr that does not tear a progress bar."""
    tqdm.write(message, file=sys.stderr)
    sys.stderr.flush()


class Progress:
    """The current phase (label, count of total, a free-form extra), shown while the run goes on.

    `done` and `extra` are plain attributes to the code that counts (`progress.done += 1`).
    Use as a context manager inside the running event loop.
    """

    def __init__(self, stream: TextIO | None = None, plain_every: float = PLAIN_EVERY) -> None:
        self.stream = stream or sys.stderr
        self.interactive = _is_terminal(self.stream)
        self.plain_every = plain_every
        self.label = ""
        self.total = 0
        self._done = 0
        self._extra = ""
        self._phase_started = time.monotonic()
        self._phase_open = False
        self._last_line = 0.0
        self._bar: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def done(self) -> int:
        return self._done

    @done.setter
    def done(self, value: int) -> None:
        self._done = value
        if self._bar is not None:
            self._bar.update(value - self._bar.n)

    @property
    def extra(self) -> str:
        return self._extra

    @extra.setter
    def extra(self, value: str) -> None:
        self._extra = value
        if self._bar is not None:
            self._bar.set_postfix_str(_postfix(value), refresh=False)

    def set(self, label: str, total: int = 0) -> None:
        """End the current phase and start the next."""
        self.end_phase()
        self.label, self.total, self._done, self._extra = label, total, 0, ""
        self._phase_started = time.monotonic()
        self._phase_open = True
        if self.interactive:
            self._bar = tqdm(
                total=total or None, desc=label, file=self.stream, leave=True, dynamic_ncols=True, mininterval=0.5,
                bar_format=None if total else _UNCOUNTED,
            )
        else:
            self.print()

    def print(self) -> None:
        """Show where the phase is now: redraw the bar, or a plain line."""
        if self._bar is not None:
            self._bar.refresh()
            return
        self._last_line = time.monotonic()
        say(tqdm.format_meter(
            self._done, self.total or None, self._last_line - self._phase_started, prefix=self.label,
            bar_format=_COUNTED if self.total else _UNCOUNTED, postfix=_postfix(self._extra) or None,
        ))

    def close(self) -> None:
        self.end_phase()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def end_phase(self) -> None:
        """Close the bar, or say the phase's last count in the log; nothing more shows until the next set()."""
        if not self._phase_open:
            return
        self._phase_open = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif time.monotonic() - self._phase_started >= 1.0:
            self.print()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REDRAW_EVERY)
            if self._bar is not None:
                self._bar.refresh()
            elif self._phase_open and time.monotonic() - self._last_line >= self.plain_every:
                self.print()

    def __enter__(self) -> "Progress":
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    """A terminal with a width: a pseudo-terminal without one (some CI runners) would show no bar at all."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


def _postfix(extra: str) -> str:
    return extra.strip().lstrip(":").strip()
