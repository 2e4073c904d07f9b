"""How far a long step has got and about how long it has left, for whoever watches.

In a terminal the line is rewritten in place; in a log (SageMaker's CloudWatch stream,
`sentiment up`'s output piped elsewhere) a plain line comes every `every_seconds` and at
the end, so the log stays readable. Standard library only: the training container is not
guaranteed to have tqdm, and this is all of it that training needs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PLAIN_EVERY_SECONDS = 30.0


class Progress:
    """`advance()` once per unit of work done, out of `total`; `finish()` at the end."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        *,
        stream: TextIO | None = None,
        every_seconds: float = PLAIN_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.every_seconds = every_seconds
        self.clock = clock
        self.started = self.last_shown = clock()
        self.done = 0

    def line(self) -> str:
        elapsed = self.clock() - self.started
        text = (
            f"{self.label}: {self.done}/{self.total} {self.unit} "
            f"({100 * self.done // self.total}%), {elapsed:.0f} s"
        )
        if 0 < self.done < self.total:
            text += f", about {elapsed / self.done * (self.total - self.done):.0f} s left"
        return text

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if self.done >= self.total or self.live or now - self.last_shown >= self.every_seconds:
            self._show()
            self.last_shown = now

    def finish(self) -> None:
        """Show the last line (the terminal's, ended) unless the total was just shown."""
        if self.live:
            self.stream.write("\n")
        elif self.done < self.total:
            self._show()
        self.stream.flush()

    def _show(self) -> None:
        if self.live:
            self.stream.write(f"\r\x1b[K{self.line()}")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
