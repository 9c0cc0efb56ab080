"""Type stub of the output-column writer (src/churn_engine/_columns.pyx)."""

import numpy as np
import numpy.typing as npt
import polars as pl

#: (codes, low, high, clamp): one digit of a table index, see string_columns
Digit = tuple[np.ndarray, int, int, bool]
#: (name, table, digits): one string column
StringSpec = tuple[str, list[str | None], list[Digit]]

def string_columns(specs: list[StringSpec], threads: int) -> list[pl.Series]: ...
def date_column(
    name: str, days: npt.NDArray[np.int32], null_day: int, threads: int
) -> pl.Series: ...
