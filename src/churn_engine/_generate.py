"""A realistic synthetic transaction log, for demos, tests and benchmarks.

:func:`generate_log` draws a shop's purchase history with numpy, fully
vectorized (no Python loop over customers or rows), in chunks of customers
so that memory stays proportional to the output.

The shape of the log, and why:

- About half of the customers buy once (``ONE_TIME_SHARE`` of them are drawn
  as one-time buyers; a few repeat buyers whose first purchase is close to
  ``end`` have had no time for a second one yet).
- Every customer has a main product category. Repeat buyers have their own
  purchase cycle, lognormal around the category's typical cycle (groceries
  ~3 weeks, apparel ~2 months, appliances more than a year), and a planned
  number of purchases (2 + geometric). Gaps between purchases vary around
  the cycle (gamma, coefficient of variation 0.5) and are at least one day.
- A repeat buyer whose planned purchases end long before ``end`` has
  stopped buying: these are the churned and at-risk customers. Purchases
  that would fall after ``end`` are cut, so recent customers are active.
- First purchases are spread uniformly over the ``years`` before ``end``.
- A few purchases come with a second row on the same day (another basket),
  and about 1 % of the rows are refunds: a negative amount (the whole
  purchase or part of it) from an hour to a month after a purchase of the
  same customer, never after ``end``.
- Amounts are lognormal per customer (some customers spend more) and per
  purchase, scaled by category, rounded to cents.
- Times of day fall in opening hours (07:00-23:00), in whole seconds.
- Rows are sorted by ``ts`` like a real log (ties keep generation order).

With ``items=True`` every row also names the item bought (see
:func:`_item_catalog` and :func:`_assign_items`):

- Each category has its own items (``n_items`` in all, more for grocery and
  apparel). An item has a list price around the category's typical amount
  (cheap basics to premium pieces), a unit cost from a margin rate that
  depends on the category and grows with the price, and a popularity weight
  from a Zipf law over a random rank, boosted for cheap items: a long tail
  of items that rarely sell.
- A row buys an item of its category (the row's category, mostly the
  customer's main one) whose list price fits the row's amount: between
  ``amount / 10`` and ``amount``, chosen by popularity (the nearest item
  when none fits). The quantity is ``max(1, round(amount / list price))`` and
  the row's unit price is ``amount / quantity`` rounded to cents, so
  ``price * quantity`` is the amount within half a cent per unit. Cheap
  items sell in volume, premium items rarely.
- About 5 % of the items are new: launched in the last 150 days, they take
  a share of their category's rows from their launch on, growing over 90
  days (rising items).
- A refund names the item of the refunded row, its unit price and cost,
  and the refunded units as a negative quantity.

The result is deterministic for a given ``seed`` (and the same arguments).
Customer ids, the per-row category, the items and everything else come
from separate random streams, so ``string_ids``, ``categories`` and
``items`` change only their own columns: the timestamps and amounts are
the same with or without them (and the items the same with or without
``categories``).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import operator

import numpy as np
import polars as pl

from .errors import ConfigError

__all__ = ["CATEGORIES", "ITEM_COLUMNS", "generate_log"]

#: Category names, their share of customers, typical purchase cycle in days
#: and typical purchase amount.
CATEGORIES: tuple[str, ...] = (
    "grocery", "apparel", "electronics", "beauty", "home", "appliances",
)  # fmt: skip
_CATEGORY_WEIGHTS = np.array([0.34, 0.20, 0.12, 0.16, 0.12, 0.06])
_CYCLE_MEDIAN_DAYS = np.array([30.0, 60.0, 90.0, 45.0, 75.0, 400.0])
_AMOUNT_MEDIAN = np.array([35.0, 60.0, 180.0, 30.0, 70.0, 450.0])

#: Columns added by ``items=True``.
ITEM_COLUMNS: tuple[str, ...] = ("item_id", "quantity", "price", "cost")
_ITEM_SHARE = np.array([0.30, 0.28, 0.10, 0.14, 0.12, 0.06])  # of the items, per category
_MARGIN_BASE = np.array([0.25, 0.50, 0.15, 0.55, 0.40, 0.20])  # typical margin rate
_PRICE_SIGMA = 0.8  # lognormal sigma of list prices around a category's price level
_PRICE_LEVEL = 0.5  # median list price / typical amount of the category
_ZIPF_EXPONENT = 1.05
_CHEAP_BOOST = 0.5  # popularity x (typical amount / list price) ** this
_NEW_ITEM_SHARE = 0.05  # of the items; launched within the last _NEW_ITEM_DAYS
_NEW_ITEM_DAYS = 150
_NEW_ITEM_ROWS = 0.04  # of a category's rows go to its new items, once launched
_NEW_ITEM_RAMP_DAYS = 90.0  # ... reached linearly over this many days after the launch
_MAX_QUANTITY = 10  # a row buys items priced at least amount / this
_DEFAULT_ITEMS = 2_000
_MAX_ITEMS = 10_000_000

ONE_TIME_SHARE = 0.45  # drawn one-time buyers; late repeat starters add ~5 %
_REPEAT_EXTRA_MEAN = 20.0  # planned purchases of a repeat buyer: 1 + geometric(mean this)
_CYCLE_SIGMA = 0.45  # lognormal sigma of a customer's cycle around the category median
_GAP_SHAPE = 4.0  # gamma shape of a gap / cycle (coefficient of variation 0.5)
_SAME_DAY_SHARE = 0.02  # purchases that get a second row on the same day
_REFUND_SHARE = 0.01  # rows that are refunds
_MAX_REFUND_DELAY_US = 30 * 86_400_000_000
_MIN_REFUND_DELAY_US = 3_600_000_000
_OPEN_S, _CLOSE_S = 7 * 3600, 23 * 3600
_US_PER_DAY = 86_400_000_000
_CHUNK = 500_000  # customers per chunk; fixed, so results do not depend on memory
_INT_ID_HIGH = 2**62
_STR_ID_DIGITS = 10
_MAX_CUSTOMERS = 1_000_000_000
_EPOCH = dt.date(1970, 1, 1)


def generate_log(
    n_customers: int,
    *,
    seed: int = 0,
    end: dt.date = dt.date(2026, 6, 30),
    years: float = 3.0,
    string_ids: bool = False,
    categories: bool = False,
    items: bool = False,
    n_items: int = _DEFAULT_ITEMS,
) -> pl.DataFrame:
    """Generate a synthetic, time-ordered transaction log.

    Parameters
    ----------
    n_customers : int
        Number of customers (>= 1); the log has about 5.4 rows per customer.
    seed : int
        Seed of the random generator (>= 0); the same seed gives the same log.
    end : datetime.date
        Last day of the log: no row is after the end of this day.
    years : float
        First purchases are spread over this many years before ``end``
        (0 < years <= 100).
    string_ids : bool
        Customer ids as strings such as ``"C0004812305"`` instead of sparse
        Int64 values in ``[1, 2**62)``.
    categories : bool
        Add a ``category`` column (String; one of :data:`CATEGORIES`).
    items : bool
        Add the columns of :data:`ITEM_COLUMNS`: ``item_id`` (Int64),
        ``quantity`` (Int64, negative on refunds), ``price`` (Float64, unit
        price of the row: ``amount / quantity`` in cents) and ``cost``
        (Float64, the item's unit cost).
    n_items : int
        Number of items with ``items`` (at least one per category).

    Returns
    -------
    polars.DataFrame
        Columns ``customer_id`` (Int64, or String with ``string_ids``),
        ``ts`` (Datetime("us"), naive), ``amount`` (Float64, negative for
        refunds), with ``categories`` ``category`` and with ``items`` the
        item columns; sorted by ``ts``.

    Examples
    --------
    >>> log = generate_log(1_000, seed=1)
    >>> log.columns
    ['customer_id', 'ts', 'amount']
    """
    n_customers = _check_int("n_customers", n_customers, 1, _MAX_CUSTOMERS)
    seed = _check_int("seed", seed, 0, None)
    if not isinstance(end, dt.date) or isinstance(end, dt.datetime):
        raise ConfigError(f"end must be a datetime.date (not a datetime), got {end!r}")
    if isinstance(years, bool) or not isinstance(years, numbers.Real):
        raise ConfigError(f"years must be a number, got {years!r}")
    years = float(years)
    if not (math.isfinite(years) and 0 < years <= 100):
        raise ConfigError(f"years must be > 0 and <= 100, got {years!r}")
    for name, flag in (("string_ids", string_ids), ("categories", categories), ("items", items)):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, got {flag!r}")
    n_items = _check_int("n_items", n_items, len(CATEGORIES), _MAX_ITEMS)

    end_day = (end - _EPOCH).days
    window_days = max(1, round(years * 365.25))
    if end_day - window_days < (dt.date.min - _EPOCH).days + 1:
        raise ConfigError(f"end={end} minus years={years} is before year 1")

    root = np.random.SeedSequence(seed)
    # a fourth child leaves the first three (and so the other columns) unchanged
    main_ss, id_ss, cat_ss, item_ss = root.spawn(4)
    n_chunks = -(-n_customers // _CHUNK)
    main_seeds = main_ss.spawn(n_chunks)
    cat_seeds = cat_ss.spawn(n_chunks)
    catalog_seed, *item_seeds = item_ss.spawn(1 + n_chunks)
    catalog = _item_catalog(np.random.default_rng(catalog_seed), n_items) if items else None

    parts: list[pl.DataFrame] = []
    for index in range(n_chunks):  # a few chunks of up to _CHUNK customers each
        lo = index * _CHUNK
        hi = min(n_customers, lo + _CHUNK)
        parts.append(
            _chunk(
                np.random.default_rng(main_seeds[index]),
                np.random.default_rng(cat_seeds[index]) if categories or items else None,
                first_customer=lo,
                size=hi - lo,
                end_day=end_day,
                window_days=window_days,
                catalog=catalog,
                item_rng=np.random.default_rng(item_seeds[index]) if items else None,
            )
        )
    frame = pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0]
    del parts
    frame = frame.sort("ts", maintain_order=True)

    id_rng = np.random.default_rng(id_ss)
    if string_ids:
        serials = _unique_ints(id_rng, n_customers, 0, 10**_STR_ID_DIGITS)
        ids = pl.Series("customer_id", serials).cast(pl.String).str.zfill(_STR_ID_DIGITS)
        ids = ("C" + ids).alias("customer_id")
    else:
        ids = pl.Series("customer_id", _unique_ints(id_rng, n_customers, 1, _INT_ID_HIGH))

    columns = [
        ids.gather(frame["customer"]),
        frame["ts"].cast(pl.Datetime("us")),
        frame["amount"],
    ]
    if categories:
        names = pl.Series("category", CATEGORIES, dtype=pl.String)
        columns.append(names.gather(frame["category"]))
    if items:
        columns.extend(frame[name] for name in ITEM_COLUMNS)
    del frame
    return pl.DataFrame(columns)


def _chunk(
    rng: np.random.Generator,
    cat_rng: np.random.Generator | None,
    *,
    first_customer: int,
    size: int,
    end_day: int,
    window_days: int,
    catalog: _Catalog | None = None,
    item_rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """Rows of customers ``first_customer .. first_customer + size - 1``.

    Returns columns ``customer`` (global customer index), ``ts`` (Int64
    microseconds since the epoch), ``amount``, when ``cat_rng`` is given
    ``category`` (UInt8 index into :data:`CATEGORIES`) and, with a
    ``catalog`` (and ``item_rng``), the :data:`ITEM_COLUMNS`; unsorted.
    """
    # -- per customer --------------------------------------------------------
    cat = rng.choice(len(CATEGORIES), size=size, p=_CATEGORY_WEIGHTS).astype(np.uint8)
    one_time = rng.random(size) < ONE_TIME_SHARE
    # Day of the first purchase, relative to end (0 = end, negative = before).
    first = -rng.integers(0, window_days, size=size)
    cycle = _CYCLE_MEDIAN_DAYS[cat] * rng.lognormal(0.0, _CYCLE_SIGMA, size=size)
    planned = 1 + rng.geometric(1.0 / _REPEAT_EXTRA_MEAN, size=size)
    # No need to draw purchases far beyond end: cap at what could fit.
    fits = 2 + (-first / (0.25 * cycle)).astype(np.int64)
    planned = np.where(one_time, 1, np.minimum(planned, fits))
    spend = _AMOUNT_MEDIAN[cat] * rng.lognormal(0.0, 0.6, size=size)

    # -- per planned purchase ------------------------------------------------
    owner = np.repeat(np.arange(size, dtype=np.int64), planned)
    starts = np.cumsum(planned) - planned
    gaps = rng.gamma(_GAP_SHAPE, 1.0 / _GAP_SHAPE, size=owner.size)
    gaps *= cycle[owner]
    gaps = np.maximum(1, np.rint(gaps)).astype(np.int64)
    gaps[starts] = 0
    days = np.cumsum(gaps)
    days -= np.repeat(days[starts], planned)
    days += first[owner]
    del gaps
    keep = days <= 0
    owner, days = owner[keep], days[keep]
    del keep

    # A few purchases get a second row (another basket) on the same day.
    copies = 1 + (rng.random(owner.size) < _SAME_DAY_SHARE)
    owner, days = np.repeat(owner, copies), np.repeat(days, copies)

    seconds = rng.integers(_OPEN_S, _CLOSE_S, size=owner.size)
    ts = (days + end_day) * _US_PER_DAY + seconds * 1_000_000
    amount = spend[owner] * rng.lognormal(0.0, 0.35, size=owner.size)
    amount = np.maximum(0.5, np.round(amount, 2))

    # About 1 % of rows are refunds of a purchase, after it, never after end.
    # A refund is appended to the chunk as an extra row: (rows + refunds) * share.
    refunded = np.flatnonzero(rng.random(owner.size) < _REFUND_SHARE / (1 - _REFUND_SHARE))
    delay = rng.integers(_MIN_REFUND_DELAY_US, _MAX_REFUND_DELAY_US, size=refunded.size)
    refund_ts = np.minimum(ts[refunded] + delay, (end_day + 1) * _US_PER_DAY - 1_000_000)
    refund_ts -= refund_ts % 1_000_000  # whole seconds like the purchases
    whole = rng.random(refunded.size) < 0.7
    part = np.where(whole, 1.0, rng.uniform(0.1, 0.9, size=refunded.size))
    refund_amount = -np.maximum(0.01, np.round(amount[refunded] * part, 2))

    columns = {
        "customer": np.concatenate([owner, owner[refunded]]) + first_customer,
        "ts": np.concatenate([ts, refund_ts]),
        "amount": np.concatenate([amount, refund_amount]),
    }
    if cat_rng is not None:
        # Mostly the customer's main category, sometimes another one.
        row_cat = cat[owner]
        other = cat_rng.random(owner.size) < 0.15
        row_cat[other] = cat_rng.choice(
            len(CATEGORIES), size=int(other.sum()), p=_CATEGORY_WEIGHTS
        ).astype(np.uint8)
        columns["category"] = np.concatenate([row_cat, row_cat[refunded]])
        if catalog is not None:
            assert item_rng is not None
            item, quantity, price = _assign_items(item_rng, catalog, row_cat, days, amount)
            # a refund returns units of the refunded row (at least one)
            refund_units = np.where(
                whole, quantity[refunded],
                np.maximum(1, np.rint(quantity[refunded] * part).astype(np.int64)),
            )  # fmt: skip
            columns["item_id"] = catalog.ids[np.concatenate([item, item[refunded]])]
            columns["quantity"] = np.concatenate([quantity, -refund_units])
            columns["price"] = np.concatenate([price, price[refunded]])
            columns["cost"] = catalog.cost[np.concatenate([item, item[refunded]])]
    return pl.DataFrame(columns)


class _Catalog:
    """The items, sorted by (category, list price).

    ``start[c]:start[c + 1]`` are the items of category ``c``; ``weight_cum``
    is the running sum of the popularity weights over that order (new items
    weigh nothing there: they are drawn apart, from ``new`` on or after
    their ``launch`` day, relative to ``end``).
    """

    def __init__(
        self,
        ids: np.ndarray,
        category: np.ndarray,
        price: np.ndarray,
        cost: np.ndarray,
        weight: np.ndarray,
        launch: np.ndarray,
    ) -> None:
        self.ids, self.category, self.price, self.cost = ids, category, price, cost
        self.launch = launch
        self.start = np.searchsorted(category, np.arange(len(CATEGORIES) + 1))
        self.weight_cum = np.cumsum(weight)
        self.new = np.flatnonzero(launch > -(2**31))  # sorted by category
        self.new_start = np.searchsorted(category[self.new], np.arange(len(CATEGORIES) + 1))


def _item_catalog(rng: np.random.Generator, n_items: int) -> _Catalog:
    """Draw the items: per category a count, list prices, unit costs, popularity."""
    # largest remainder, at least one item per category
    quota = _ITEM_SHARE * (n_items - len(CATEGORIES))
    counts = 1 + np.floor(quota).astype(np.int64)
    short = n_items - int(counts.sum())
    counts[np.argsort(-(quota - np.floor(quota)), kind="stable")[:short]] += 1
    category = np.repeat(np.arange(len(CATEGORIES), dtype=np.uint8), counts)
    typical = _AMOUNT_MEDIAN[category]
    price = typical * _PRICE_LEVEL * rng.lognormal(0.0, _PRICE_SIGMA, size=n_items)
    price = np.maximum(0.5, np.round(price, 2))
    # a random popularity rank per category: Zipf weight, cheap items favoured
    starts = np.cumsum(counts) - counts
    position = np.empty(n_items, dtype=np.int64)
    position[np.argsort(rng.random(n_items) + category, kind="stable")] = np.arange(n_items)
    rank = 1 + position - starts[category]
    weight = rank.astype(np.float64) ** -_ZIPF_EXPONENT * (typical / price) ** _CHEAP_BOOST
    margin = _MARGIN_BASE[category] + 0.08 * np.log(price / typical)
    margin = np.clip(margin + rng.normal(0.0, 0.06, size=n_items), 0.02, 0.9)
    cost = np.maximum(0.01, np.round(price * (1.0 - margin), 2))
    new = rng.random(n_items) < _NEW_ITEM_SHARE
    launch = np.where(new, -rng.integers(10, _NEW_ITEM_DAYS, size=n_items), -(2**31))
    weight = np.where(new, 0.0, weight)
    ids = 1 + np.arange(n_items, dtype=np.int64)  # category by category
    order = np.lexsort((price, category))
    return _Catalog(
        ids[order], category[order], price[order], cost[order], weight[order], launch[order]
    )


def _assign_items(
    rng: np.random.Generator,
    catalog: _Catalog,
    category: np.ndarray,
    days: np.ndarray,
    amount: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per purchase row: catalog index of the item, quantity and unit price."""
    lo = catalog.start[category]
    hi = catalog.start[category.astype(np.int64) + 1]
    # items of the row's category priced between amount / _MAX_QUANTITY and
    # amount: a run of its price-sorted items (else the nearest one)
    keys = catalog.category * 1e9 + catalog.price
    base = category.astype(np.float64) * 1e9
    capped = np.minimum(amount, 1e8)
    first = np.searchsorted(keys, base + capped / _MAX_QUANTITY, side="left")
    first = np.clip(first, lo, hi - 1)
    stop = np.searchsorted(keys, base + capped, side="right")
    stop = np.clip(stop, first + 1, hi)
    below = np.where(first > 0, catalog.weight_cum[np.maximum(first - 1, 0)], 0.0)
    total = catalog.weight_cum[stop - 1] - below
    target = below + rng.random(amount.size) * total
    item = np.searchsorted(catalog.weight_cum, target, side="right")
    # a run of zero weight (new items only): its cheapest item
    item = np.where(total > 0, np.clip(item, first, stop - 1), first)

    # new items take a share of the rows of their category from their launch on
    if catalog.new.size:
        new_lo = catalog.new_start[category]
        new_count = catalog.new_start[category.astype(np.int64) + 1] - new_lo
        pick = new_lo + (rng.random(amount.size) * new_count).astype(np.int64)
        candidate = catalog.new[np.minimum(pick, catalog.new.size - 1)]
        # their share ramps up over _NEW_ITEM_RAMP_DAYS after the launch: rising items
        ramp = np.clip((days - catalog.launch[candidate]) / _NEW_ITEM_RAMP_DAYS, 0.0, 1.0)
        takes = (rng.random(amount.size) < _NEW_ITEM_ROWS * ramp) & (new_count > 0)
        item = np.where(takes, candidate, item)

    quantity = np.maximum(1, np.rint(amount / catalog.price[item])).astype(np.int64)
    price = np.round(amount / quantity, 2)
    return item, quantity, price


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct random int64 values in ``[low, high)``, in random order."""
    values = rng.integers(low, high, size=n, dtype=np.int64)
    while True:
        _, first_seen = np.unique(values, return_index=True)
        if first_seen.size == n:
            return values
        duplicate = np.ones(n, dtype=bool)
        duplicate[first_seen] = False
        values[duplicate] = rng.integers(low, high, size=int(duplicate.sum()), dtype=np.int64)


def _check_int(name: str, value: object, low: int, high: int | None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, got {value!r}")
    try:
        value = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name} must be an int, got {value!r}") from None
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high:,}"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")
    return int(value)
