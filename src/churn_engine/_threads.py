"""How many threads a compiled pass runs on."""

from __future__ import annotations

from .config import ScoreConfig

__all__ = ["PARALLEL_MIN_ROWS", "kernel_threads"]

#: below this many rows the compiled pass runs on one thread: starting (and,
#: on a busy machine, waiting for) a thread team costs more than it saves
PARALLEL_MIN_ROWS = 50_000


def kernel_threads(config: ScoreConfig, n_rows: int) -> int:
    """Threads for the compiled pass: the configured number, else all cores (0)
    for large inputs and one thread for small ones."""
    if config.threads is not None:
        return config.threads
    return 0 if n_rows >= PARALLEL_MIN_ROWS else 1
