"""A lenient CSV reader for files Polars refuses (ragged or broken lines).

Polars reads well-formed CSV fast; when it cannot parse a file, this reader
goes through it line by line with Python's csv module so that a malformed
line can be named in an error, or set aside as a reject, without losing the
rest. It is slow (Python per line) and only used on that failure path.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib

import polars as pl

__all__ = ["MALFORMED", "LenientCsv", "read_csv_leniently"]

#: marker column of the frame: True for a line whose field count is wrong
MALFORMED = "__churn_malformed"


@dataclasses.dataclass
class LenientCsv:
    frame: pl.LazyFrame  # every column String, plus MALFORMED
    #: data row index -> (line number in the file, fields found, fields expected)
    malformed: dict[int, tuple[int, int, int]]


def read_csv_leniently(path: pathlib.Path, separator: str = ",") -> LenientCsv:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=separator)
        header = next(reader, None) or []
        width = len(header)
        columns: list[list[str | None]] = [[] for _ in header]
        flags: list[bool] = []
        malformed: dict[int, tuple[int, int, int]] = {}
        for fields in reader:
            if not fields:  # blank line
                continue
            bad = len(fields) != width
            if bad:
                malformed[len(flags)] = (reader.line_num, len(fields), width)
            flags.append(bad)
            for index, column in enumerate(columns):
                # keep what is there so the reject shows it; empty text is null
                value = fields[index] if index < len(fields) else None
                column.append(value if value != "" else None)
    data: dict[str, pl.Series] = {
        name: pl.Series(name, values, dtype=pl.String)
        for name, values in zip(header, columns, strict=True)
    }
    good = ~pl.Series(flags, dtype=pl.Boolean)
    for name, text in data.items():
        # as Polars would infer: a column of whole numbers is an integer column
        numbers = text.str.strip_chars().cast(pl.Int64, strict=False)
        if numbers.filter(good).null_count() == text.filter(good).null_count():
            data[name] = numbers
    data[MALFORMED] = pl.Series(MALFORMED, flags, dtype=pl.Boolean)
    return LenientCsv(pl.DataFrame(data).lazy(), malformed)
