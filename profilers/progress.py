"""Text progress of a profiling run on stderr: done/total steps, phase, entry, elapsed, ETA.

A board is often driven over ssh or from a log, so this uses nothing but text: one line
rewritten in place on a terminal, and a new line every few seconds otherwise.
"""

from __future__ import annotations

import time
from typing import TextIO

from profilers.protocol import Progress

__all__ = ["ProgressPrinter"]


class ProgressPrinter:
    """``[done/total] percent  phase  key  elapsed  ETA`` on stderr: one updating line on a
    terminal, a line every few seconds otherwise (the log of a board run over ssh).

    A step is one entry's warm-up or one entry's turn in a round; totals grow when
    :func:`profilers.protocol.measure_many` re-measures noisy entries.
    """

    def __init__(self, stream: TextIO, *, planned: int, quiet: bool) -> None:
        self._stream = stream
        self._quiet = quiet
        self._tty = stream.isatty()
        self._before = 0  # steps of finished chunks
        self._later = planned  # steps planned for chunks not started yet
        self._current = 0  # total steps of the chunk being measured
        self._start = time.monotonic()
        self._last = 0.0
        self._width = 0

    def start_chunk(self, planned: int) -> None:
        """A chunk of ``planned`` steps starts."""
        self._later -= planned
        self._current = planned

    def chunk_done(self) -> None:
        """The current chunk is done (with however many steps it took in the end)."""
        self._before += self._current

    def update(self, progress: Progress) -> None:
        """Report ``progress`` within the current chunk (the callback of measure_many)."""
        self._current = progress.total
        now = time.monotonic()
        done = self._before + progress.done
        total = self._before + progress.total + self._later
        if self._quiet or (now - self._last < (0.2 if self._tty else 5.0) and done < total):
            return
        self._last = now
        elapsed = now - self._start
        eta = elapsed / done * (total - done) if done else 0.0
        line = (
            f"[{done}/{total}] {done / total:4.0%}  {progress.phase}  {progress.key}  "
            f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}"
        )
        if self._tty:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End the updating line, so what follows starts on a line of its own."""
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
