"""Atheris harness: bytes -> valid inputs of every kernel stage, checked
against a plain-Python oracle, then the same rows through churn_engine.score.

Run (best with the sanitizer build, see .ci/fuzz and docs/reliability.md)::

    python tests/fuzz/fuzz_kernel.py -max_total_time=60 [CORPUS_DIR]
    python tests/fuzz/fuzz_kernel.py CRASH_FILE          # replay one input

The same bytes also give a list of string ids for encode_strings, checked
against sorted(set(...)) of their bytes.

The bytes choose: int64 ids (or int32 dictionary codes with a rank table, as
for string ids), int32 day numbers, the 64 bits of each amount (int64, or a
finite float64), optional category ranks, how the rows are cut into
segments, the thread count and the rule options. Inputs are valid in the
sense of the kernel's contract (what _prepare hands over: codes in range,
finite floats, categories < number of categories, as_of_day >= every day);
values are drawn from the extremes of their types as often as from
realistic ranges.

A finding is any exception other than churn_engine.ChurnEngineError (for
instance DataError for an int64 money overflow), a ValueError raised by
churn_engine's own validation, a wrong result (AssertionError against the
oracle), or a sanitizer report. ``CHURN_FUZZ_DAYS=narrow`` keeps day
numbers and priors in realistic ranges (to look past known overflow
findings at the extremes).
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import struct
import sys
import traceback
from fractions import Fraction

import atheris
from draw import Draw as BaseDraw  # the harnesses run as scripts: their folder is on sys.path

with atheris.instrument_imports(include=["churn_engine"]):
    import numpy as np
    import polars as pl
    import pyarrow as pa

    import churn_engine
    from churn_engine import _kernel
    from churn_engine._prepare import _string_chunks, decode_string_keys

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_DAY = 2_932_896  # 9999-12-31 as days since 1970-01-01
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NARROW = os.environ.get("CHURN_FUZZ_DAYS", "") == "narrow"

_INT_IDS = (0, 1, -1, 2, INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, 2**31, 2**32,
            -(2**32), 2**53 + 1, 12345)  # fmt: skip
_DAY_BASES = (0, 19_000, -1, -719_162, 2_932_896, INT32_MIN, INT32_MAX, INT32_MIN + 1,
              INT32_MAX - 400, 95_000_000, -95_000_000)  # fmt: skip
_INT_AMOUNTS = (0, 1, -1, 100, -100, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX // 2,
                2**53, -(2**53), 2**62)  # fmt: skip
_FLOAT_AMOUNTS = (0.0, -0.0, 0.1, -0.1, 5e-324, -5e-324, 1e308, -1e308, 1.7976931348623157e308,
                  -1.7976931348623157e308, 2.0**53, 1e-300, 19.99, -19.99)  # fmt: skip


class Draw(BaseDraw):
    """The draws this harness needs beyond the shared ones."""

    def i64(self) -> int:
        return self.fdp.ConsumeIntInRange(INT64_MIN, INT64_MAX)

    def finite_float(self) -> float:
        if self.bool():
            return float(self.pick(_FLOAT_AMOUNTS))
        if self.bool():
            return self.int(-(10**7), 10**7) / 100.0
        value = struct.unpack("<d", struct.pack("<q", self.i64()))[0]
        return value if math.isfinite(value) else 0.0


# -- the case ----------------------------------------------------------------


def draw_case(data: bytes) -> dict:
    d = Draw(data)
    n = d.int(0, 8) if d.bool() else d.int(0, 300)
    dense = d.bool()  # string ids: int32 dictionary codes + rank table
    n_ids = d.int(1, max(1, n))
    if dense:
        rank_of_code = np.array(
            np.random.default_rng(d.int(0, 2**32 - 1)).permutation(n_ids), dtype=np.int32
        )
        ids = np.array([d.int(0, n_ids - 1) for _ in range(n)], dtype=np.int32)
    else:
        rank_of_code = None
        mode = d.int(0, 2)
        if mode == 0:
            pool = [d.pick(_INT_IDS) for _ in range(n_ids)]
        elif mode == 1:
            base = d.i64()
            pool = [max(INT64_MIN, min(INT64_MAX, base + d.int(-1000, 1000))) for _ in range(n_ids)]
        else:
            pool = [d.i64() for _ in range(n_ids)]
        ids = np.array([d.pick(pool) for _ in range(n)], dtype=np.int64)

    if NARROW:
        base = d.int(-719_162, 2_932_896 - 5000)
        span = d.int(0, 5000)
    else:
        base = d.pick(_DAY_BASES) if d.bool() else d.int(INT32_MIN, INT32_MAX)
        span = d.pick((0, 1, 3, 30, 400, 5000, 2**31, 2**32))
    days = np.array(
        [max(INT32_MIN, min(INT32_MAX, base + d.int(0, span))) for _ in range(n)], dtype=np.int32
    )

    integer_amounts = d.bool()
    if integer_amounts:
        values = [d.pick(_INT_AMOUNTS) if d.bool() else d.int(-(10**6), 10**6) for _ in range(n)]
        amounts = np.array(values, dtype=np.int64)
    else:
        cents = d.bool()  # every amount whole cents: the kernel sums those exactly
        values = [d.int(-(10**9), 10**9) / 100.0 if cents else d.finite_float() for _ in range(n)]
        amounts = np.array(values, dtype=np.float64).view(np.int64)

    n_cats = d.int(1, 4)
    cats = np.array([d.int(0, n_cats - 1) for _ in range(n)], dtype=np.int32) if d.bool() else None
    if cats is None:
        n_cats = 1

    # segments: cut points anywhere, empty segments allowed
    n_cuts = d.int(0, 4)
    bounds = sorted([0, n, *(d.int(0, n) for _ in range(n_cuts))])
    segments = list(itertools.pairwise(bounds))

    fixed_prior = np.array(
        [math.nan if d.bool() else _positive(d) for _ in range(n_cats)], dtype=np.float64
    )
    horizons = np.array([d.int(1, INT32_MAX) if not d.bool() else d.int(1, 1000)
                         for _ in range(n_cats)], dtype=np.int32)  # fmt: skip
    at_risk = _positive(d)
    churn = _positive(d)
    at_risk, churn = min(at_risk, churn), max(at_risk, churn)
    return {
        "n": n, "ids": ids, "rank_of_code": rank_of_code, "days": days, "amounts": amounts,
        "integer_amounts": integer_amounts, "cats": cats, "n_cats": n_cats,
        "segments": segments, "threads": d.int(1, 3), "fixed_prior": fixed_prior,
        "horizons": horizons, "as_of_extra": d.int(0, 1000) if d.bool() else 0,
        "prior_weight": 0.0 if d.bool() else _positive(d), "at_risk": at_risk, "churn": churn,
        "bins": d.int(2, 9), "public": d.bool(), "seed": d.int(0, 2**31),
        "option_horizon": d.int(1, 2**40) if d.int(0, 7) == 0 else None,
    }  # fmt: skip


def _positive(d: Draw) -> float:
    if NARROW:
        return d.int(1, 10**6) / 1000.0
    choice = d.int(0, 3)
    if choice == 0:
        return d.pick((1e-300, 0.5, 1.0, 1.5, 2.0, 30.0, 365.0, 1e9, 3e9, 1e300))
    if choice == 1:
        return d.int(1, 10**6) / 1000.0
    value = abs(d.finite_float())
    return value if value > 0 else 1.0


# -- oracle ------------------------------------------------------------------


def _as_float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def _is_purchase(bits: int, integer_amounts: bool) -> bool:
    return bits >= 0 if integer_amounts else _as_float(bits) >= 0.0


def _cents(bits: int) -> int | None:
    """The number of cents of a double that is whole cents (the kernel's test:
    the double nearest to c / 100, -0.0 excluded, below 1e13), else None."""
    value = _as_float(bits)
    if not abs(value) < 1e13:
        return None
    cents = round(value * 100)
    back = struct.unpack("<q", struct.pack("<d", cents / 100))[0]
    return cents if back == bits else None


def _money(members: list[tuple[int, int]], exact: bool) -> tuple[float, float]:
    """A group's money and refund sums of double amounts: in integer cents
    rounded once when the log is whole cents (and the sums stay within 2^53
    cents), else in the kernel's row order."""
    if exact:
        cents = [_cents(bits) for _, bits in members]
        money_c = sum(c for c in cents if c is not None)
        refund_c = -sum(c for c in cents if c is not None and c < 0)
        if abs(money_c) <= 2**53 and refund_c <= 2**53:
            return float(Fraction(money_c, 100)), float(Fraction(refund_c, 100))
    money = refund = 0.0
    for _, bits in members:
        value = _as_float(bits)
        money += value
        if not value >= 0.0:
            refund -= value
    return money, refund


def oracle_groups(case: dict) -> tuple[list[dict], int]:
    """Per (customer key, category) statistics, in the kernel's order."""
    keys = case["ids"] if case["rank_of_code"] is None else case["rank_of_code"][case["ids"]]
    cats = case["cats"] if case["cats"] is not None else np.zeros(case["n"], dtype=np.int32)
    rows = sorted(
        zip(
            keys.tolist(),
            cats.tolist(),
            case["days"].tolist(),
            case["amounts"].tolist(),
            strict=True,
        )
    )  # (key, cat, day, amount bits): the kernel's summation order
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for key, cat, day, bits in rows:
        groups.setdefault((key, cat), []).append((day, bits))
    out, no_purchase = [], 0
    integer = case["integer_amounts"]
    exact = not integer and all(_cents(bits) is not None for bits in case["amounts"].tolist())
    for (key, cat), members in groups.items():
        days = sorted({day for day, bits in members if _is_purchase(bits, integer)})
        if not days:
            no_purchase += 1
            continue
        if integer:
            money = sum(bits for _, bits in members)
            refund = -sum(bits for _, bits in members if bits < 0)
        else:
            money, refund = _money(members, exact)
        gaps = [b - a for a, b in itertools.pairwise(days)]
        out.append({
            "key": key, "cat": cat, "n_orders": len(days), "n_rows": len(members),
            "first_day": days[0], "last_day": days[-1], "money": money, "refund": refund,
            "mean": sum(gaps) / len(gaps) if gaps else math.nan,
            "std": float(np.std(gaps, ddof=1)) if len(gaps) > 1 else math.nan,
            "median": float(np.median(gaps)) if gaps else math.nan,
        })  # fmt: skip
    return out, no_purchase


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# -- the stages --------------------------------------------------------------


def _segments(case: dict, array: np.ndarray | None) -> list[np.ndarray] | None:
    if array is None:
        return None
    return [array[a:b] for a, b in case["segments"]]


def _call(fn, values: dict):  # type: ignore[no-untyped-def]
    """Call a kernel stage with its arguments taken by name from ``values``."""
    names = list(inspect.signature(fn).parameters)
    return fn(*[values[name] for name in names])


def group(case: dict) -> tuple[dict, int]:
    """group_rows + group_statistics; the result's "key" column is the int64
    id (or the rank of a dictionary code)."""
    ids, days = _segments(case, case["ids"]), _segments(case, case["days"])
    amounts, cats = _segments(case, case["amounts"]), _segments(case, case["cats"])
    # half the cases pack the rows and give them back as they are summarised,
    # as a score does
    consume = case["n"] % 2 == 1
    grouped = _kernel.group_rows(
        ids, case["rank_of_code"], days, amounts, cats, case["n"],
        case["integer_amounts"], case["threads"], consume,
    )  # fmt: skip
    groups = _kernel.group_statistics(
        grouped, case["integer_amounts"], case["threads"], consume=consume
    )
    return groups, grouped.no_purchase


def check_kernel(case: dict) -> None:
    groups, no_purchase = group(case)
    expected, expected_no_purchase = oracle_groups(case)
    assert no_purchase == expected_no_purchase, (no_purchase, expected_no_purchase)
    assert len(groups["n_orders"]) == len(expected), (len(groups["n_orders"]), len(expected))
    for i, e in enumerate(expected):
        got = {name: groups[name][i] for name in groups}
        where = f"group {i} (key {e['key']}, cat {e['cat']}): kernel {got}, oracle {e}"
        assert got["key"] == e["key"] and got["cat"] == e["cat"], where
        for name in ("n_orders", "n_rows", "first_day", "last_day"):
            assert got[name] == e[name], f"{name}: {where}"
        if case["integer_amounts"]:
            assert got["monetary_total"] == e["money"], where
            assert got["refund_total"] == e["refund"], where
        else:  # exact cents, or the same summation order: bit-identical
            assert got["monetary_total"] == e["money"] or (
                math.isnan(got["monetary_total"]) and math.isnan(e["money"])
            ), where
            assert got["refund_total"] == e["refund"], where
        assert _close(got["interval_mean_days"], e["mean"]), where
        assert _close(got["interval_median_days"], e["median"]), where
        assert _close(got["interval_std_days"], e["std"]), where
    if not expected:
        return

    cat, n_orders, mean = groups["cat"], groups["n_orders"], groups["interval_mean_days"]
    stage = {"cat": cat, "n_orders": n_orders, "interval_mean": mean,
             "fixed_prior": case["fixed_prior"], "threads": case["threads"]}  # fmt: skip
    priors = _call(_kernel.category_priors, stage)
    for c in range(case["n_cats"]):
        fixed = case["fixed_prior"][c]
        pool = [m for m, k, g in zip(mean, n_orders, cat, strict=True) if k >= 2 and g == c]
        want = fixed if not math.isnan(fixed) else (float(np.median(pool)) if pool else math.nan)
        assert _close(priors[c], want), f"prior of category {c}: {priors[c]} != {want}"

    last_day = groups["last_day"]
    as_of_day = min(INT32_MAX, int(last_day.max()) + case["as_of_extra"])
    stage.update(
        last_day=last_day, priors=priors, horizon_days=case["horizons"], as_of_day=as_of_day,
        prior_weight=case["prior_weight"], at_risk_cycles=case["at_risk"],
        churn_cycles=case["churn"],
    )  # fmt: skip
    cycles = _call(_kernel.cycle_status, stage)
    w = case["prior_weight"]
    for i in range(len(n_orders)):
        recency = as_of_day - int(last_day[i])
        assert cycles["recency_days"][i] == recency, (
            f"recency_days of group {i}: kernel {cycles['recency_days'][i]}, "
            f"as_of_day {as_of_day} - last_day {last_day[i]} = {recency}"
        )
        k, prior = int(n_orders[i]) - 1, float(priors[cat[i]])
        if k == 0:
            c = prior
        elif math.isnan(prior):
            c = float(mean[i])
        else:
            c = (k * float(mean[i]) + w * prior) / (k + w)
            if math.isinf(c):  # the sum overflowed: the weighted mean is finite
                c = (k / (k + w)) * float(mean[i]) + (w / (k + w)) * prior
        got_c = float(cycles["cycle_days"][i])
        assert _close(got_c, c), f"cycle_days of group {i}: {got_c} != {c}"
        if math.isinf(got_c):
            raise AssertionError(f"cycle_days of group {i} is infinite: {cycles}")
        if not math.isnan(got_c):
            next_day = int(last_day[i]) + math.floor(got_c + 0.5)
            if next_day > MAX_DAY:  # no date after 9999-12-31: null
                next_day = _kernel.NULL_DAY
            assert cycles["expected_next_day"][i] == next_day, (i, next_day, cycles)
        # the status follows from the kernel's own cycles_since_last
        since = float(cycles["cycles_since_last"][i])
        if recency >= case["horizons"][cat[i]]:
            want = 2
        elif k > 0:
            want = 2 if since >= case["churn"] else 1 if since >= case["at_risk"] else 0
        elif math.isnan(prior):
            want = 0
        else:
            want = 1 if recency >= case["at_risk"] * prior else 0
        assert cycles["status"][i] == want, f"status of group {i}: {cycles['status'][i]} != {want}"

    bins = case["bins"]
    money = groups["monetary_total"]
    values = {"r": -cycles["recency_days"], "f": n_orders, "m": money}
    cuts = {}
    for name, v in values.items():
        cuts[name] = _kernel.quantile_cuts(v, bins)
        ordered = np.sort(v)
        want = [float(ordered[((len(v) - 1) * i) // bins]) for i in range(1, bins)]
        got = cuts[name].tolist()
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, want,
                   strict=True)), f"{name} cuts {got} != {want}"  # fmt: skip
    stage.update(recency_days=cycles["recency_days"], money=money, r_cuts=cuts["r"],
                 f_cuts=cuts["f"], m_cuts=cuts["m"])  # fmt: skip
    scores = _call(_kernel.rfm_scores, stage)
    for (name, v), s in zip(values.items(), scores, strict=True):
        want = 1 + (cuts[name][None, :] < v.astype(np.float64)[:, None]).sum(axis=1)
        assert np.array_equal(s, want), f"{name} scores {s.tolist()} != {want.tolist()}"


# -- the public API on the same rows -----------------------------------------


def frame_of(case: dict) -> pl.DataFrame:
    if case["rank_of_code"] is None:
        ids = pl.Series("customer_id", case["ids"], dtype=pl.Int64)
    else:
        ids = pl.Series("customer_id", [f"c{c}" for c in case["ids"].tolist()], dtype=pl.String)
    amounts = case["amounts"] if case["integer_amounts"] else case["amounts"].view(np.float64)
    columns = {
        "customer_id": ids,
        "ts": pl.Series("ts", case["days"], dtype=pl.Int32).cast(pl.Date),
        "amount": pl.Series("amount", amounts),
    }
    if case["cats"] is not None:
        columns["category"] = pl.Series("category", [f"k{c}" for c in case["cats"].tolist()])
    return pl.DataFrame(columns)


def options_of(case: dict) -> dict:
    options = {
        "threads": case["threads"], "rfm_bins": case["bins"], "at_risk_cycles": case["at_risk"],
        "churn_cycles": case["churn"], "prior_weight": case["prior_weight"],
        "horizon_days": int(case["horizons"][0]),
    }  # fmt: skip
    if case["option_horizon"] is not None:  # ScoreConfig takes any positive int
        options["horizon_days"] = case["option_horizon"]
    if case["cats"] is not None:
        options["category_col"] = "category"
    if not math.isnan(case["fixed_prior"][0]):
        options["prior_days"] = float(case["fixed_prior"][0])
    return options


def check_public(case: dict) -> None:
    frame = frame_of(case)
    try:
        result = churn_engine.score(frame, **options_of(case))
    except churn_engine.ChurnEngineError:
        return
    assert result.height <= frame.height
    if result.height:
        assert result["r_score"].min() >= 1 and result["r_score"].max() <= case["bins"]


# -- string ids --------------------------------------------------------------

_STRING_TYPES = (pa.string(), pa.large_string(), pa.string_view())
_PIECES = ("", "\0", "a", "b", "é", "中", "z", "0", "9", "\U0001f600")


def check_strings(d: Draw) -> None:
    """encode_strings (ranks in byte order) against sorted(set(bytes)): shared
    prefixes around the 8/12/16-byte boundaries, NUL bytes, long strings, chunks
    of every Arrow string type (sliced), few-bit hashes that collide."""
    pool = []
    for _ in range(d.int(1, 40)):
        head = "p" * d.pick((0, 0, 4, 7, 8, 11, 12, 15, 16, 17, 130, 260))
        pool.append(head + "".join(d.pick(_PIECES) for _ in range(d.int(0, 12))))
    strings = [d.pick(pool) for _ in range(d.int(0, 200))]
    cuts = sorted(d.int(0, len(strings)) for _ in range(d.int(0, 3)))
    arrays = []
    for a, b in itertools.pairwise([0, *cuts, len(strings)]):
        pad = d.int(0, 3)
        whole = pa.array(["pad"] * pad + strings[a:b], type=d.pick(_STRING_TYPES))
        arrays.append(whole.slice(pad))
    column = pa.chunked_array(arrays) if len({a.type for a in arrays}) == 1 else None
    chunks = (
        _string_chunks(column)
        if column is not None
        else [c for array in arrays for c in _string_chunks(pa.chunked_array([array]))]
    )
    ranks = np.full(len(strings), -1, dtype=np.int32)
    offsets, data = _kernel.encode_strings(
        ranks, chunks, d.int(1, 3), d.int(-1, 4), d.pick((2**64 - 1, 0, 1, 0xFF, 2**63))
    )
    distinct = sorted({s.encode() for s in strings})
    raw = data.tobytes()
    assert [raw[offsets[i] : offsets[i + 1]] for i in range(len(distinct))] == distinct
    assert len(offsets) == len(distinct) + 1
    rank = {v: i for i, v in enumerate(distinct)}
    assert ranks.tolist() == [rank[s.encode()] for s in strings], "ranks differ"
    check_string_keys(d, strings, chunks, ranks)


def check_string_keys(d: Draw, strings: list[str], chunks: list, ranks: np.ndarray) -> None:
    """The int64 keys of the same chunks: they order like the ranks (byte
    order), decode to the strings, pext and byte tables agree; refused only
    when a string is longer than 16 bytes or more than 63 bits vary."""
    threads = d.int(1, 3)
    plan = _kernel.string_key_plan(chunks, threads)
    if plan is None:
        return
    assert all(len(s.encode()) <= 16 for s in strings), "a plan for a long string"
    keys = np.empty(len(strings), dtype=np.int64)
    _kernel.string_keys(keys, plan, chunks, threads)
    portable = np.empty_like(keys)
    _kernel.string_keys(portable, plan, chunks, threads, portable=True)
    assert np.array_equal(keys, portable), "pext and byte tables differ"
    order = np.argsort(keys, kind="stable")
    assert np.array_equal(ranks[order], np.sort(ranks)), "keys out of byte order"
    assert len(np.unique(keys)) == len(np.unique(ranks)), "keys merge or split strings"
    assert decode_string_keys(keys, plan, threads).to_pylist() == strings, "decoding differs"


# -- entry point -------------------------------------------------------------


def _own_validation(exc: BaseException) -> bool:
    """A ValueError raised by churn_engine code itself (not numpy/polars)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "churn_engine" in frames[-1].filename


#: CHURN_FUZZ_KNOWN=tag,tag excuses findings already reported, to look past them
_KNOWN_SIGNATURES = {
    "date_range": [(OverflowError, "date value out of range"),
                   (OverflowError, "must have magnitude")],
    "recency_overflow": [(AssertionError, "recency_days of group")],
    "next_day_overflow": [(AssertionError, "is not representable in int32")],
    "horizon_int32": [(OverflowError, "out of bounds for int32")],
}  # fmt: skip
_KNOWN = [sig for t in os.environ.get("CHURN_FUZZ_KNOWN", "").split(",") if t
          for sig in _KNOWN_SIGNATURES.get(t, [])]  # fmt: skip


def test_one_input(data: bytes) -> None:
    case = draw_case(data)
    check_strings(Draw(data))
    try:
        check_kernel(case)
        if case["public"]:
            check_public(case)
    except churn_engine.ChurnEngineError:
        pass
    except ValueError as exc:
        if not _own_validation(exc):
            raise
    except Exception as exc:
        if not any(isinstance(exc, t) and text in str(exc) for t, text in _KNOWN):
            raise


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
