"""Atheris harness: bytes -> a CSV file and a Parquet file -> churn_engine.score(path).

Run (best with the sanitizer build, see .ci/fuzz and docs/reliability.md)::

    python tests/fuzz/fuzz_reader.py -max_total_time=60 [CORPUS_DIR]
    python tests/fuzz/fuzz_reader.py CRASH_FILE          # replay one input

The CSV file is either raw bytes from the fuzzer or a header plus rows whose
fields come from a vocabulary of awkward tokens (empty, NaN, inf, huge
integers, dates and datetimes in several formats and offsets, quotes,
embedded separators and newlines, non-UTF-8 bytes). The Parquet file is a
pyarrow table with fuzzed column types (every integer width, strings, large
strings, dictionaries, dates, timestamps of every unit with and without a
zone, decimals, floats, booleans, all-null columns), nulls, row groups and
encodings, sometimes with its bytes truncated or flipped. The options vary
too (as_of, on_error, tz, ts_unit, category_col).

Allowed outcomes: a result, or churn_engine.ChurnEngineError (which covers
the polars/pyarrow errors the API re-raises as such), or FileNotFoundError.
Anything else escaping (a raw polars or pyarrow exception, a polars panic,
OverflowError, TypeError, ...) is a finding, as is a result whose stats do
not add up or that has more rows than the input.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import sys
import tempfile

import atheris
from draw import Draw as BaseDraw  # the harnesses run as scripts: their folder is on sys.path

with atheris.instrument_imports(include=["churn_engine"]):
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    import churn_engine

#: CHURN_FUZZ_DAYS=narrow keeps Parquet dates within Python's date range (to
#: look past the known findings at the int32 extremes)
NARROW = os.environ.get("CHURN_FUZZ_DAYS", "") == "narrow"
_TOKENS = (
    "", "0", "1", "-1", "7", "42", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "18446744073709551615", "1e308", "-1e308", "1e309", "NaN", "nan",
    "inf", "-inf", "0.1", "-0.0", "19.99", "1,5", "abc", "é", "😀", "\x00", " ", "null", "NULL",
    "true", "2024-01-01", "2024-02-30", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z",
    "2024-03-31T02:30:00+02:00", "2024-01-01T23:59:59.999999999-12:00", "1970-01-01",
    "0001-01-01", "9999-12-31", "262143-01-01", "-0001-01-01", "2024-13-01", "2024-1-1",
    "20240101", "1704067200", "24:00:00", '"', '""', '"a,b"', '"a\nb"', "a\rb", "\t",
)  # fmt: skip
_HEADERS = (
    ("customer_id", "ts", "amount"),
    ("customer_id", "ts", "amount", "category"),
    ("customer_id", "ts"),
    ("customer_id", "ts", "amount", "amount"),
    ("ts", "amount", "customer_id", "extra"),
    ("customer_id", "ts", "amount", ""),
)
_ZONES = ("UTC", "Europe/Berlin", "America/St_Johns", "Pacific/Chatham", "Asia/Kolkata")
_INT_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
              pa.uint32(), pa.uint64())  # fmt: skip


class Draw(BaseDraw):
    """The draws this harness needs beyond the shared ones."""

    def bytes(self, n: int) -> bytes:
        return self.fdp.ConsumeBytes(n)


# -- CSV -----------------------------------------------------------------------


def csv_bytes(d: Draw) -> bytes:
    if d.int(0, 3) == 0:  # raw bytes, sometimes behind a valid header
        head = b"customer_id,ts,amount\n" if d.bool() else b""
        return head + d.bytes(d.int(0, 400))
    header = list(d.pick(_HEADERS))
    lines = [",".join(header)]
    for _ in range(d.int(0, 12)):
        width = len(header) + d.pick((0, 0, 0, -1, 1))
        fields = []
        for _ in range(max(0, width)):
            token = d.pick(_TOKENS)
            if token and d.int(0, 5) == 0:
                token = '"' + token.replace('"', '""') + '"'
            fields.append(token)
        lines.append(",".join(fields))
    text = d.pick(("\n", "\r\n")).join(lines) + ("\n" if d.bool() else "")
    data = text.encode("utf-8")
    if d.int(0, 7) == 0:  # a byte that is not UTF-8
        pos = d.int(0, len(data))
        data = data[:pos] + b"\xff" + data[pos:]
    return data


# -- Parquet -------------------------------------------------------------------


def _nulls(d: Draw, values: list) -> list:
    if d.int(0, 3):
        return values
    return [None if d.int(0, 4) == 0 else v for v in values]


def _id_column(d: Draw, n: int) -> pa.Array:
    kind = d.int(0, 6)
    raw = [d.int(-(2**63), 2**63 - 1) if d.int(0, 3) == 0 else d.int(0, 5) for _ in range(n)]
    if kind <= 1:
        t = d.pick(_INT_TYPES)
        bits = t.bit_width
        lo, hi = (0, 2**bits - 1) if pa.types.is_unsigned_integer(t) else (
            -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)  # fmt: skip
        return pa.array(_nulls(d, [min(hi, max(lo, v)) for v in raw]), type=t)
    strings = _nulls(d, [d.pick(("a", "b", "é", "", "\x00", "😀", str(v))) for v in raw])
    if kind == 2:
        return pa.array(strings, type=pa.string())
    if kind == 3:
        return pa.array(strings, type=pa.large_string())
    if kind == 4:
        return pa.array(strings, type=pa.string()).dictionary_encode()
    if kind == 5:
        return pa.array(_nulls(d, [float(v) for v in raw]), type=pa.float64())
    return pa.nulls(n)


def _ts_column(d: Draw, n: int) -> pa.Array:
    kind = d.int(0, 7)
    bases = (0, 19_723, -1, 2_932_496, -719_162) + (() if NARROW else (2**31 - 1, -(2**31),
                                                                       95_000_000))  # fmt: skip
    days = [d.pick(bases) + d.int(0, 400) for _ in range(n)]
    days = [max(-(2**31), min(2**31 - 1, v)) for v in days]
    if kind <= 1:
        return pa.array(_nulls(d, days), type=pa.int32()).cast(pa.date32())
    if kind == 2:
        return pa.array(_nulls(d, [v * 86_400_000 for v in days]), type=pa.int64()).cast(
            pa.date64()
        )
    if kind <= 5:
        unit = d.pick(("s", "ms", "us", "ns"))
        per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000,
                   "ns": 86_400_000_000_000}[unit]  # fmt: skip
        lo, hi = -(2**63), 2**63 - 1
        values = [max(lo, min(hi, v * per_day + d.int(0, per_day))) for v in days]
        tz = d.pick((None, "UTC", "+05:30", "America/New_York", "Australia/Lord_Howe"))
        return pa.array(_nulls(d, values), type=pa.int64()).cast(pa.timestamp(unit, tz))
    if kind == 6:
        return pa.array(_nulls(d, [d.pick(_TOKENS) for _ in range(n)]), type=pa.string())
    return pa.array(_nulls(d, [d.int(-(2**40), 2**40) for _ in range(n)]), type=pa.int64())


def _amount_column(d: Draw, n: int) -> pa.Array:
    kind = d.int(0, 6)
    if kind <= 1:
        t = d.pick((pa.float64(), pa.float32()))
        values = [d.pick((0.0, -0.0, 1.5, -2.25, 1e308, -1e308, float("nan"), float("inf"),
                          5e-324, 19.99)) for _ in range(n)]  # fmt: skip
        return pa.array(_nulls(d, values), type=t)
    if kind <= 3:
        t = d.pick(_INT_TYPES)
        bits = t.bit_width
        lo, hi = (0, 2**bits - 1) if pa.types.is_unsigned_integer(t) else (
            -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)  # fmt: skip
        values = [max(lo, min(hi, d.pick((0, 1, -1, 100, 2**62, -(2**62), 2**63, 2**64 - 1,
                                          -(2**63))))) for _ in range(n)]  # fmt: skip
        return pa.array(_nulls(d, values), type=t)
    if kind == 4:
        values = [decimal.Decimal(d.pick(("0", "1.5", "-2.25", "99999999999999999.99",
                                          "-0.01"))) for _ in range(n)]  # fmt: skip
        return pa.array(_nulls(d, values), type=pa.decimal128(d.pick((19, 38)), 2))
    if kind == 5:
        return pa.array(_nulls(d, [d.pick(_TOKENS) for _ in range(n)]), type=pa.string())
    return pa.nulls(n, type=d.pick((pa.null(), pa.bool_(), pa.float64())))


def parquet_bytes(d: Draw, folder: str) -> tuple[bytes, bool]:
    n = d.int(0, 12)
    columns = {"customer_id": _id_column(d, n), "ts": _ts_column(d, n),
               "amount": _amount_column(d, n)}  # fmt: skip
    category = d.bool()
    if category:
        cats = _nulls(d, [d.pick(("x", "y", "", "é")) for _ in range(n)])
        columns["category"] = pa.array(cats, type=pa.string())
    drop = d.int(0, 7)
    if drop < 3:
        columns.pop(("customer_id", "ts", "amount")[drop])
    table = pa.table(columns)
    path = os.path.join(folder, "p.parquet")
    pq.write_table(
        table, path, row_group_size=d.pick((1, 3, 1_000_000)), use_dictionary=d.bool(),
        compression=d.pick(("none", "snappy", "zstd")), write_statistics=d.bool(),
    )  # fmt: skip
    with open(path, "rb") as fh:
        data = fh.read()
    mutate = d.int(0, 7)
    if mutate == 0 and data:  # truncate
        data = data[: d.int(0, len(data) - 1)]
    elif mutate == 1 and data:  # flip a byte
        pos = d.int(0, len(data) - 1)
        data = data[:pos] + bytes([data[pos] ^ (1 + d.int(0, 254))]) + data[pos + 1 :]
    return data, category


# -- options and the check -----------------------------------------------------


def options(d: Draw, category: bool) -> dict:
    opts: dict = {}
    choice = d.int(0, 5)
    if choice == 1:
        opts["as_of"] = d.pick(("2024-06-30", "2024-06-30T12:00:00+02:00", "0001-01-01",
                                "9999-12-31", "not a date"))  # fmt: skip
    elif choice == 2:
        opts["as_of"] = dt.date(d.int(1, 9999), d.int(1, 12), d.int(1, 28))
    elif choice == 3:
        opts["as_of"] = dt.datetime(
            2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=d.int(-12, 12)))
        )
    if d.bool():
        opts["on_error"] = "quarantine"
    if d.int(0, 3) == 0:
        opts["tz"] = d.pick(_ZONES)
    if d.int(0, 3) == 0:
        opts["ts_unit"] = d.pick(("s", "ms", "us", "ns"))
    if category and d.bool():
        opts["category_col"] = "category"
    return opts


def score(path: str, opts: dict) -> None:
    config = {k: v for k, v in opts.items() if k != "as_of"}
    try:
        result = churn_engine.Scorer(**config).run(path, as_of=opts.get("as_of"))
    except (churn_engine.ChurnEngineError, FileNotFoundError):
        return
    except BaseException as exc:  # polars panics derive from BaseException
        if any(type(exc).__name__ == name and text in str(exc) for name, text in _KNOWN):
            return
        raise
    stats = result.stats
    assert stats.rows_accepted + stats.rows_rejected + stats.rows_after_as_of == stats.rows_read, (
        stats
    )
    assert result.customers.height <= stats.rows_accepted, (result.customers.height, stats)
    if result.rejects is not None:
        assert result.rejects.height == stats.rows_rejected, (result.rejects.height, stats)


#: CHURN_FUZZ_KNOWN=tag,tag excuses findings already reported, to look past them
_KNOWN_SIGNATURES = {
    "date_range": [("OverflowError", "date value out of range"),
                   ("OverflowError", "must have magnitude")],
    "tz_offset_panic": [("PanicException", "unable to parse time zone")],
}  # fmt: skip
_KNOWN = [sig for t in os.environ.get("CHURN_FUZZ_KNOWN", "").split(",") if t
          for sig in _KNOWN_SIGNATURES.get(t, [])]  # fmt: skip
_FOLDER = tempfile.mkdtemp(prefix="churn-fuzz-reader-")


def test_one_input(data: bytes) -> None:
    d = Draw(data)
    csv_path = os.path.join(_FOLDER, "c.csv")
    with open(csv_path, "wb") as fh:
        fh.write(csv_bytes(d))
    score(csv_path, options(d, category=True))
    parquet, category = parquet_bytes(d, _FOLDER)
    parquet_path = os.path.join(_FOLDER, "in.parquet")
    with open(parquet_path, "wb") as fh:
        fh.write(parquet)
    score(parquet_path, options(d, category))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    pl.Config.set_verbose(False)
    main()
