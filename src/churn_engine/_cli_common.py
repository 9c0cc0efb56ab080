"""What every ``churn-engine`` subcommand shares: its name, the progress
display on stderr, the checks of the files it is given before any work
starts, and its error and warning lines."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO, TypeAlias

import polars as pl

from ._writers import check_destination, format_for, write_atomic
from .errors import ConfigError

PROG = "churn-engine"
DEFAULT_END = dt.date(2026, 6, 30)

#: The message for an output that names the input file.
OVERWRITES_INPUT = "--output would overwrite INPUT; choose another file"

_GLOB_CHARS = frozenset("*?[")

#: A file name as given on the command line, or a pathlib.Path of it.
PathArg: TypeAlias = str | os.PathLike[str]


# -- progress ----------------------------------------------------------------


class Progress:
    """Stage progress on a stream (stderr): a callable taking a stage name.

    On a terminal a single status line is redrawn (``\\r``) with the stage
    and the elapsed seconds, refreshed twice a second by a daemon thread;
    otherwise one plain line is printed per stage. Disabled, it does nothing.
    """

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool = True, tty: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.start = time.perf_counter()
        self.stage: str | None = None
        self.stage_start = self.start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._closed = False

    def __call__(self, stage: str) -> None:
        if not self.enabled or self._closed:
            return
        with self._lock:
            self.stage = str(stage)
            self.stage_start = time.perf_counter()
            if self.tty:
                self._draw()
            else:
                self._write(f"[{self.stage_start - self.start:7.1f} s] {self.stage}\n")
        if self.tty and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="churn-progress", daemon=True)
            self._ticker.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close("failed" if exc_type is not None else "done")

    def close(self, final: str = "done") -> None:
        """Stop the ticker and finish the display with a last line."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if not self.enabled or self.stage is None:
            return
        with self._lock:
            now = time.perf_counter()
            if self.tty:
                self._write(f"\r\x1b[K{PROG}: {final} in {now - self.start:.1f} s\n")
            else:
                self._write(f"[{now - self.start:7.1f} s] {final}\n")

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if not self._stop.is_set():
                    self._draw()

    def _draw(self) -> None:
        now = time.perf_counter()
        self._write(
            f"\r\x1b[K{PROG}: {self.stage} ... {now - self.stage_start:.1f} s"
            f" (total {now - self.start:.1f} s)"
        )

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stderr: progress is optional
            pass


# -- files -------------------------------------------------------------------


def check_input(path: str, what: str = "input file") -> str:
    """The input path as a string; a missing file (not a glob pattern) is an error."""
    if not _GLOB_CHARS.intersection(path):
        if not os.path.exists(path):
            raise FileNotFoundError(2, f"{what} not found", path)
        if os.path.isdir(path):
            name = "INPUT" if what == "input file" else what
            raise ConfigError(f"{name} {path!r} is a folder; give a file")
    return path


def check_table_output(path: PathArg) -> None:
    """A table can be written to ``path``: a known extension, in an existing folder.

    Errors name ``path`` as given (a string keeps a leading ``./``, a
    pathlib.Path drops it): pass the form the command prints.
    """
    format_for(path)
    check_destination(path)


def refuse_overwrite(
    source: str, outputs: Iterable[PathArg | None], message: str = OVERWRITES_INPUT
) -> None:
    """A :class:`ConfigError` with ``message`` when an output is the file ``source``."""
    if any(output is not None and same_path(source, output) for output in outputs):
        raise ConfigError(message)


def same_path(a: PathArg, b: PathArg) -> bool:
    """Whether ``a`` and ``b`` name the same file (after links); unresolvable: no."""
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def write_generated(
    output: str, generate: Callable[[], pl.DataFrame], *, quiet: bool
) -> tuple[pl.DataFrame, pathlib.Path]:
    """Check ``output``, make a synthetic frame and write it there atomically,
    with the progress stages "generate" and "write"; the frame and its path."""
    check_table_output(output)
    with Progress(enabled=not quiet) as progress:
        progress("generate")
        frame = generate()
        progress("write")
        path = write_atomic(frame, output)
    return frame, path


# -- messages ----------------------------------------------------------------


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def warn_unsaved_rejects(on_error: str | None, rejects: str | None, rows_rejected: int) -> None:
    """Rows were set aside but --rejects did not say where to save them."""
    if on_error == "quarantine" and rejects is None and rows_rejected:
        warn(f"{rows_rejected:,} rejected rows not saved (use --rejects FILE)")
