"""Typed draws from atheris' data provider, shared by the fuzz harnesses."""

from __future__ import annotations

import atheris


class Draw:
    """Convenience wrapper around atheris.FuzzedDataProvider."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def int(self, lo: int, hi: int) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def bool(self) -> bool:
        return self.fdp.ConsumeBool()

    def pick(self, seq):  # type: ignore[no-untyped-def]
        return seq[self.fdp.ConsumeIntInRange(0, len(seq) - 1)]
