"""The HTML report: numbers checked by hand, self-containment, well-formed SVG,
optional sections, the CLI, and a render in headless Chromium with a screenshot.

The hand log (``hand_log``) has five customers scored as of 2024-06-30:

=====  ========================================  =========  ========  =============
id     purchases (amount)                        buyer      status    reason
=====  ========================================  =========  ========  =============
1      01-05 (40), 02-04 (25), 03-05 (35)         repeat     churned   cycles>=2.0
2      2024-02-20 (120)                           one_time   at_risk   1.5 x prior
3      2023-01-10 (15), refund 2023-02-01 (-5)    one_time   churned   no purchase 365 d
4      05-01 (10), 05-31 (20), 06-20 (30)         repeat     active    cycles<1.5
5      2024-06-25 (60)                            one_time   active    < 1.5 x prior
=====  ========================================  =========  ========  =============

The prior is the median mean gap of the repeat buyers: median(30, 25) = 27.5
days; customer 1's cycle is (2 x 30 + 27.5) / 3 = 29.17 d, recency 117 d =
4.0 cycles; customer 4's cycle (2 x 25 + 27.5) / 3 = 25.83 d, recency 10 d;
customer 2's recency 131 >= 1.5 x 27.5 = 41.25; customer 5's recency 5 < 41.25;
customer 3's recency 537 >= 365. Revenue 100 + 120 + 10 + 60 + 60 = 350,
refunds 5; ten rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html.parser
import os
import pathlib
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import polars as pl
import pytest
from hypothesis import given

import churn_engine
from churn_engine import ConfigError, ReportSection, Scorer, cli, render_report, report_sections
from churn_engine import _charts as ch
from churn_engine._generate import generate_log
from churn_engine._writers import write_atomic
from churn_engine.report import _actions_hook, _whole_days, actions_section, churn_rate_section
from properties.strategies import Case, cases, logs

AS_OF = dt.date(2024, 6, 30)
#: the charts of every report: the churn-rate curve is computed from the log
BASE_CHARTS = {
    "status_mix", "churn_rate", "segment_sizes", "segment_value", "cycle_distribution",
    "recency_vs_cycle",
}  # fmt: skip
ARTIFACTS = pathlib.Path(
    os.environ.get("CHURN_TEST_ARTIFACTS", pathlib.Path(__file__).parent / "artifacts")
)


def hand_log() -> pl.DataFrame:
    d = dt.date
    return pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3, 3, 4, 4, 4, 5],
            "ts": [d(2024, 1, 5), d(2024, 2, 4), d(2024, 3, 5), d(2024, 2, 20), d(2023, 1, 10),
                   d(2023, 2, 1), d(2024, 5, 1), d(2024, 5, 31), d(2024, 6, 20), d(2024, 6, 25)],
            "amount": [40.0, 25.0, 35.0, 120.0, 15.0, -5.0, 10.0, 20.0, 30.0, 60.0],
        }
    )  # fmt: skip


def churn_rate_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [dt.date(2024, 4, 30), dt.date(2024, 5, 31), dt.date(2024, 6, 30)],
            "churn_rate": [0.2, 0.25, 0.4],
            "customers": [5, 4, 5],
            "churned": [1, 1, 2],
        }
    )


def funnel_frame() -> pl.DataFrame:
    return pl.DataFrame({"step": ["pv", "cart", "buy"], "count": [1000, 400, 100]})


def products_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "class": ["traffic", "profit", "potential", "edge"],
            "items": [12, 5, 7, 30],
            "item_share": [12 / 54, 5 / 54, 7 / 54, 30 / 54],
            "revenue": [1200.0, 3400.5, 800.0, 95.25],
        }
    )


def actions_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "buyer_type": ["one_time", "one_time", "repeat", "repeat", "one_time"],
            "status": ["at_risk", "churned", "churned", "active", "active"],
            "action": ["care_reminder", "price_offer", "personal_care", "membership", "welcome"],
        }
    )


def hand_report(tmp_path: pathlib.Path, **kwargs: object) -> str:
    out = churn_engine.report(hand_log(), tmp_path / "report.html", as_of=AS_OF, **kwargs)
    return out.read_text(encoding="utf-8")


# -- reading the page ----------------------------------------------------------------

_FIGURE = re.compile(r'<figure class="(chart|table)[^"]*" data-\1="([^"]+)">.*?</figure>', re.S)


def figures(page: str, kind: str = "chart") -> dict[str, ET.Element]:
    """Each chart (or table) of the page, parsed as XML (so it must be well-formed)."""
    found = {}
    for match in _FIGURE.finditer(page):
        if match.group(1) == kind:
            found[match.group(2)] = ET.fromstring(match.group(0))
    return found


def marks(element: ET.Element) -> list[ET.Element]:
    return [e for e in element.iter() if "mark" in e.get("class", "").split()]


def mark_data(element: ET.Element, key: str, *names: str) -> dict[tuple[str, ...], str]:
    """``{(data-name1, ...): data-key}`` over the marks of a chart."""
    return {tuple(m.get(f"data-{n}", "") for n in names): m.get(f"data-{key}", "")
            for m in marks(element)}  # fmt: skip


def cards(page: str) -> dict[str, str]:
    return dict(
        re.findall(r'<div class="card [^"]*" data-key="([^"]+)" data-value="([^"]*)"', page)
    )


def table_rows(element: ET.Element) -> list[list[str]]:
    return [[td.text or "" for td in tr.iter("td")] for tr in element.iter("tr")][1:]


# -- numbers by hand -------------------------------------------------------------------


def test_key_numbers_by_hand(tmp_path: pathlib.Path) -> None:
    page = hand_report(tmp_path)
    assert cards(page) == {
        "customers": "5", "rows": "10", "as_of": "2024-06-30", "active": "2", "at_risk": "1",
        "churned": "2", "one_time": "3", "revenue": "350.0", "cycle": "27.5",
    }  # fmt: skip
    assert "40.0 %" in page  # churned 2 of 5, shown as the churn rate
    assert "As of 2024-06-30 · 5 customers · 10 transactions" in page


def test_status_mix_by_hand(tmp_path: pathlib.Path) -> None:
    chart = figures(hand_report(tmp_path))["status_mix"]
    counts = {k: int(v) for k, v in mark_data(chart, "count", "row", "series").items()}
    # empty parts (repeat buyers at risk) are not drawn
    assert counts == {
        ("all", "active"): 2, ("all", "at_risk"): 1, ("all", "churned"): 2,
        ("one_time", "active"): 1, ("one_time", "at_risk"): 1, ("one_time", "churned"): 1,
        ("repeat", "active"): 1, ("repeat", "churned"): 1,
    }  # fmt: skip
    shares = mark_data(chart, "share", "row", "series")
    assert float(shares[("all", "churned")]) == pytest.approx(0.4)
    assert float(shares[("one_time", "at_risk")]) == pytest.approx(1 / 3)


def test_status_reasons_by_hand(tmp_path: pathlib.Path) -> None:
    table = figures(hand_report(tmp_path), "table")["status_reasons"]
    assert table_rows(table) == [
        ["Active", "cycles<1.5", "1", "20.0 %"],
        ["Active", "one_time_recency<1.5x_prior", "1", "20.0 %"],
        ["At risk", "one_time_recency>=1.5x_prior", "1", "20.0 %"],
        ["Churned", "cycles>=2.0", "1", "20.0 %"],
        ["Churned", "no_purchase_365d", "1", "20.0 %"],
    ]


def test_segments_by_hand(tmp_path: pathlib.Path) -> None:
    charts = figures(hand_report(tmp_path))
    # one customer each; ties in size are ordered by name; revenue in the same order
    sizes = mark_data(charts["segment_sizes"], "value", "label")
    assert list(sizes) == [("Can't Lose Them",), ("Lost",), ("Loyal",), ("New Customers",),
                           ("Potential Loyalist",)]  # fmt: skip
    assert set(sizes.values()) == {"1"}
    values = mark_data(charts["segment_value"], "value", "label")
    assert values == {("Can't Lose Them",): "120", ("Loyal",): "100", ("Lost",): "10",
                      ("New Customers",): "60", ("Potential Loyalist",): "60"}  # fmt: skip


def test_cycle_charts_by_hand(tmp_path: pathlib.Path) -> None:
    charts = figures(hand_report(tmp_path))
    bars = marks(charts["cycle_distribution"])
    # two repeat buyers, cycles 25.83 and 29.17 days, in different bins
    assert sorted(int(b.get("data-count", "")) for b in bars) == [1, 1]
    for bar, cycle in zip(
        sorted(bars, key=lambda b: float(b.get("data-lo", ""))), (77.5 / 3, 87.5 / 3), strict=True
    ):
        assert float(bar.get("data-lo", "")) <= cycle <= float(bar.get("data-hi", ""))
    # the prior of the one-time buyers is marked
    assert "prior 27.5 d" in ET.tostring(charts["cycle_distribution"], encoding="unicode")
    # every customer has a cycle (the one-time buyers take the prior): 5 in the grid
    cells = marks(charts["recency_vs_cycle"])
    assert sum(int(c.get("data-count", "")) for c in cells) == 5
    # each cell's tooltip names its whole days of recency: 5, 10, 117, 131 and 537
    found = []
    for cell in cells:
        days = re.match(r"(\d+)(?:-(\d+))? days since", cell.findtext("title") or "")
        assert days is not None
        lo, hi = int(days.group(1)), int(days.group(2) or days.group(1))
        found += [r for r in (5, 10, 117, 131, 537) if lo <= r <= hi]
    assert sorted(found) == [5, 10, 117, 131, 537]


def test_every_mark_has_a_tooltip_and_charts_have_labels(tmp_path: pathlib.Path) -> None:
    page = hand_report(tmp_path, churn_rate=churn_rate_frame(), funnel=funnel_frame(),
                       products=products_frame())  # fmt: skip
    for name, chart in figures(page).items():
        svg = chart.find("svg")
        assert svg is not None and svg.get("viewBox"), name
        assert chart.findtext("figcaption/h3"), name
        assert marks(chart), name
        for mark in marks(chart):
            assert mark.findtext("title"), (name, mark.attrib)
        texts = [t.text for t in svg.iter("text") if t.text]
        assert texts, name  # ticks, labels


# -- self-contained and well-formed ------------------------------------------------------


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
                self.refs.append((tag, name, value or ""))


def test_self_contained(tmp_path: pathlib.Path) -> None:
    page = hand_report(tmp_path, churn_rate=churn_rate_frame(), funnel=funnel_frame(),
                       products=products_frame(), actions=actions_frame())  # fmt: skip
    assert "http://" not in page and "https://" not in page
    assert "url(" not in page and "@import" not in page
    parser = _Refs()
    parser.feed(page)
    # the only references are the in-page links of the section menu
    assert parser.refs and all(
        tag == "a" and name == "href" and value.startswith("#") for tag, name, value in parser.refs
    ), parser.refs
    ids = set(re.findall(r'<section id="([^"]+)"', page))
    assert {value[1:] for _, _, value in parser.refs} == ids
    assert not parser.tags & {"img", "link", "iframe", "object", "embed", "video", "audio"}
    assert page.count("<script>") == 1 and "<script src" not in page


def test_svg_is_well_formed_xml_with_escaped_names(tmp_path: pathlib.Path) -> None:
    codes = [f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    odd = "Tom & <Jerry> \"quoted\" 'single'"
    segment_map = {odd: codes[:60], "Other": codes[60:]}
    page = hand_report(tmp_path, segment_map=segment_map, title="A&B <report>")
    for svg in re.findall(r"<svg .*?</svg>", page, re.S):
        root = ET.fromstring(svg)  # raises on malformed XML
        assert root.tag == "svg"
    labels = mark_data(figures(page)["segment_sizes"], "value", "label")
    assert (odd,) in labels
    assert "<title>A&amp;B &lt;report&gt;</title>" in page


def test_report_is_deterministic(tmp_path: pathlib.Path) -> None:
    log = generate_log(500, seed=5)
    first = churn_engine.report(log, tmp_path / "a.html").read_bytes()
    second = churn_engine.report(log.sample(fraction=1.0, shuffle=True, seed=1),
                                 tmp_path / "b.html").read_bytes()  # fmt: skip
    assert first == second


# -- optional sections ----------------------------------------------------------------------


def test_default_sections(tmp_path: pathlib.Path) -> None:
    """From a transaction log alone: the churn-rate curve and the action table are
    computed; funnel and product classes need their own data."""
    page = hand_report(tmp_path)
    assert set(figures(page)) == BASE_CHARTS
    assert set(figures(page, "table")) == {"status_reasons", "actions"}
    assert re.findall(r'<section id="([^"]+)"', page) == [
        "key-numbers", "status", "churn-rate", "segments", "cycles", "actions",
    ]  # fmt: skip
    for absent in ("funnel", "products"):
        assert f'href="#{absent}"' not in page


def test_churn_rate_curve_by_hand(tmp_path: pathlib.Path) -> None:
    """The curve is churn_engine.churn_rate of the log up to as_of, with the
    score's horizon. On 2024-06-30 customer 3 (last purchase 2023-01-10; the
    refund of 2023-02-01 is no purchase) is 537 days quiet: 1 of 5 churned.
    The curve starts a horizon after the first purchase (2024-01-10)."""
    page = hand_report(tmp_path)
    points = mark_data(figures(page)["churn_rate"], "value", "date")
    assert points[("2024-06-30",)] == "0.2"
    assert min(day for (day,) in points if day) == "2024-01-10"
    expected = churn_engine.churn_rate(hand_log(), end=AS_OF)
    assert len([day for (day,) in points if day]) == expected.height
    for day, rate in expected.select("date", "churn_rate").rows():
        assert float(points[(day.isoformat(),)]) == pytest.approx(rate)


def test_optional_sections_with_frames(tmp_path: pathlib.Path) -> None:
    page = hand_report(tmp_path, churn_rate=churn_rate_frame(), funnel=funnel_frame(),
                       products=products_frame(), actions=actions_frame())  # fmt: skip
    charts = figures(page)
    assert set(charts) == BASE_CHARTS | {"churn_rate", "funnel", "product_classes",
                                         "product_classes_revenue"}  # fmt: skip
    assert re.findall(r'<section id="([^"]+)"', page) == [
        "key-numbers", "status", "churn-rate", "segments", "cycles", "funnel", "products",
        "actions",
    ]  # fmt: skip

    points = mark_data(charts["churn_rate"], "value", "date")
    assert points == {("2024-04-30",): "0.2", ("2024-05-31",): "0.25", ("2024-06-30",): "0.4",
                      ("",): ""}  # the line itself  # fmt: skip
    assert "2024-06-30: churn rate 40.0 % (2 of 5 customers)" in page

    steps = {m.get("data-step"): m for m in marks(charts["funnel"])}
    assert list(steps) == ["pv", "cart", "buy"]
    assert [float(steps[s].get("data-of-first", "")) for s in steps] == [1.0, 0.4, 0.1]
    assert [float(steps[s].get("data-of-previous", "")) for s in steps] == [1.0, 0.4, 0.25]
    funnel_rows = table_rows(figures(page, "table")["funnel_steps"])
    assert funnel_rows == [["pv", "1,000", "100.0 %", "–"], ["cart", "400", "40.0 %", "40.0 %"],
                           ["buy", "100", "10.0 %", "25.0 %"]]  # fmt: skip

    items = mark_data(charts["product_classes"], "value", "label")
    assert items == {("traffic",): "12", ("profit",): "5", ("potential",): "7", ("edge",): "30"}
    revenue = mark_data(charts["product_classes_revenue"], "value", "label")
    assert revenue[("profit",)] == "3400.5"
    product_rows = table_rows(figures(page, "table")["product_table"])
    assert product_rows[0] == ["traffic", "12", "22.2 %", "1,200.00"]

    # customers per action counted from the score on (buyer_type, status), largest first
    action_rows = table_rows(figures(page, "table")["actions"])
    assert action_rows == [
        ["One-time buyers", "At risk", "1", "20.0 %", "care_reminder"],
        ["One-time buyers", "Churned", "1", "20.0 %", "price_offer"],
        ["Repeat buyers", "Churned", "1", "20.0 %", "personal_care"],
        ["Repeat buyers", "Active", "1", "20.0 %", "membership"],
        ["One-time buyers", "Active", "1", "20.0 %", "welcome"],
    ]


def test_actions_by_segment_and_given_counts() -> None:
    result = Scorer().run(hand_log(), as_of=AS_OF)
    by_segment = pl.DataFrame({"segment": ["Lost", "Loyal", "Champions"],
                               "action": ["reactivate", "reward", "vip"]})  # fmt: skip
    section = actions_section(by_segment, result.customers)
    rows = table_rows(figures(section.body, "table")["actions"])
    # Champions has no customer in the hand log
    assert rows == [["Lost", "1", "20.0 %", "reactivate"], ["Loyal", "1", "20.0 %", "reward"],
                    ["Champions", "0", "0.0 %", "vip"]]  # fmt: skip
    given_counts = by_segment.with_columns(customers=pl.Series([5, 30, 15]))
    section = actions_section(given_counts, None)
    rows = table_rows(figures(section.body, "table")["actions"])
    assert [r[:3] for r in rows] == [["Loyal", "30", "60.0 %"], ["Champions", "15", "30.0 %"],
                                     ["Lost", "5", "10.0 %"]]  # fmt: skip


def test_actions_hook_counts_the_action_column() -> None:
    """Customers per action rule, with the table's description and channel."""
    assert _actions_hook(Scorer().run(hand_log(), as_of=AS_OF), churn_engine.ScoreConfig()) is None
    config = churn_engine.ScoreConfig(actions=True)
    result = Scorer(config).run(hand_log(), as_of=AS_OF)
    frame = _actions_hook(result, config)
    assert frame is not None
    expected = result.customers.group_by("action_reason", "action").len("customers")
    assert sorted(frame.select("action_reason", "action", "customers").rows()) == sorted(
        expected.rows()
    )
    table = config.action_table()
    assert table is not None
    rules = {r["rule"]: r for r in table.to_frame().iter_rows(named=True)}
    for row in frame.iter_rows(named=True):
        assert row["description"] == rules[row["action_reason"]]["description"]
        assert row["channel"] == rules[row["action_reason"]]["channel"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"churn_rate": pl.DataFrame({"day": [dt.date(2024, 1, 1)], "churn_rate": [0.1]})},
         "churn_rate frame needs a column 'date'; it has day, churn_rate"),
        ({"churn_rate": pl.DataFrame({"date": ["2024-01-01"], "churn_rate": [0.1]})},
         "column 'date' must be temporal, got String (e.g. '2024-01-01')"),
        ({"funnel": pl.DataFrame({"step": ["pv"], "count": ["many"]})},
         "funnel frame: column 'count' must be numeric"),
        ({"products": pl.DataFrame({"class": ["x"], "name": ["y"]})},
         "products frame needs a numeric column"),
        ({"actions": pl.DataFrame({"action": ["x"], "team": ["y"]})},
         "actions frame: give it a customers column"),
        ({"actions": pl.DataFrame({"segment": ["Lost"]})}, "actions frame needs a column 'action'"),
    ],
)  # fmt: skip
def test_malformed_section_frames(
    tmp_path: pathlib.Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        hand_report(tmp_path, **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "report.html").exists()


def hand_events() -> pl.DataFrame:
    """User 1: pv, cart, buy; user 2: pv, fav; user 3: pv twice; user 4 buys
    without a page view (a buyer, but not at the funnel's last step)."""
    at = dt.datetime(2024, 6, 1, 12)
    return pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3, 3, 4],
        "behavior": ["pv", "cart", "buy", "pv", "fav", "pv", "pv", "buy"],
        "ts": [at] * 8,
    })  # fmt: skip


def test_funnel_from_events_by_hand(tmp_path: pathlib.Path) -> None:
    """Users with a pv 3 (1, 2, 3); of them with fav or cart 2 (1, 2); of those
    who bought 1 (user 1)."""
    page = hand_report(tmp_path, events=hand_events())
    chart = figures(page)["funnel"]
    assert mark_data(chart, "count", "step") == {("pv",): "3", ("fav/cart",): "2", ("buy",): "1"}


def test_cli_report_with_events(tmp_path: pathlib.Path) -> None:
    log, events = tmp_path / "log.parquet", tmp_path / "events.parquet"
    write_atomic(hand_log(), log)
    write_atomic(hand_events(), events)
    out = tmp_path / "r.html"
    assert cli.main(["report", str(log), "-o", str(out), "--events", str(events), "-q"]) == 0
    assert "funnel" in figures(out.read_text())
    # a transaction log is no event log: bad data, exit 1, naming the column
    assert cli.main(["report", str(log), "-o", str(out), "--events", str(log), "-q"]) == 1


def test_churn_rate_section_with_datetimes_and_nulls() -> None:
    frame = pl.DataFrame(
        {"date": [dt.datetime(2024, 1, 2, 5), None, dt.datetime(2024, 1, 1)],
         "churn_rate": [0.5, 0.1, None]}
    )  # fmt: skip
    chart = figures(churn_rate_section(frame).body)["churn_rate"]
    assert mark_data(chart, "value", "date") == {("2024-01-02",): "0.5", ("",): ""}


# -- edge cases of the score ------------------------------------------------------------------


def test_no_customer_scored(tmp_path: pathlib.Path) -> None:
    refunds_only = pl.DataFrame(
        {"customer_id": [1], "ts": [dt.date(2024, 1, 1)], "amount": [-10.0]}
    )
    page = churn_engine.report(refunds_only, tmp_path / "r.html").read_text()
    assert figures(page) == {}
    assert cards(page) == {"customers": "0", "rows": "1", "as_of": "2024-01-01"}
    assert "No customer was scored" in page


def test_no_repeat_buyer_and_no_segments(tmp_path: pathlib.Path) -> None:
    one_time = pl.DataFrame(
        {"customer_id": [1, 2, 3], "ts": [dt.date(2024, 1, d) for d in (1, 5, 9)],
         "amount": [1.0, 2.0, 3.0]}
    )  # fmt: skip
    page = churn_engine.report(one_time, tmp_path / "r.html", rfm_bins=3).read_text()
    assert set(figures(page)) == {"status_mix", "churn_rate"}
    assert "No purchase cycles: the log has no repeat buyer." in page
    assert "No RFM segments" in page
    assert "cycle" not in cards(page)


def test_per_category_rows(tmp_path: pathlib.Path) -> None:
    log = generate_log(300, seed=2, categories=True)
    page = churn_engine.report(log, tmp_path / "r.html", category_col="category").read_text()
    scores = churn_engine.score(log, category_col="category")
    assert "Customer x category rows" in page
    assert cards(page)["customers"] == str(scores.height)


# -- against the score, on random logs ------------------------------------------------------


@given(case=cases(logs(max_customers=60)))
def test_charts_agree_with_the_score(case: Case) -> None:
    """Every count drawn equals a plain-Polars count of the score output."""
    config = dataclasses.replace(case.config, threads=1)  # tiny logs: threads only cost
    result = Scorer(config).run(case.log.frame, as_of=case.as_of)
    customers = result.customers
    page = render_report(report_sections(result, config=config))
    charts = figures(page)  # parses every chart as XML
    assert cards(page)["customers"] == str(customers.height)
    if customers.height == 0:
        assert charts == {}
        return
    drawn = {
        k: int(v) for k, v in mark_data(charts["status_mix"], "count", "row", "series").items()
    }
    expected = {("all", s): n for s, n in customers.group_by("status").len().iter_rows()}
    expected |= {
        (b, s): n for b, s, n in customers.group_by("buyer_type", "status").len().iter_rows()
    }
    assert drawn == expected
    if "segment_sizes" in charts:
        sizes = mark_data(charts["segment_sizes"], "value", "label")
        counts = customers.group_by("segment").len().iter_rows()
        assert {(s if s is not None else "(no segment)",): str(n) for s, n in counts} == sizes
    repeat_cycles = customers.filter(pl.col("buyer_type") == "repeat")["cycle_days"].drop_nulls()
    if "cycle_distribution" in charts:
        bars = marks(charts["cycle_distribution"])
        assert sum(int(b.get("data-count", "")) for b in bars) == repeat_cycles.len()
    else:
        assert repeat_cycles.len() == 0
    with_cycle = (
        customers["cycle_days"].drop_nulls().filter(customers["cycle_days"].drop_nulls() > 0)
    )
    if "recency_vs_cycle" in charts:
        cells = marks(charts["recency_vs_cycle"])
        assert sum(int(c.get("data-count", "")) for c in cells) == with_cycle.len()


# -- chart helpers --------------------------------------------------------------------------


def test_nice_ticks_and_formats() -> None:
    assert ch.nice_ticks(0, 182_055, 4) == [0, 50_000, 100_000, 150_000, 200_000]
    assert ch.nice_ticks(0, 0.43, 5) == [0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert ch.nice_ticks(5, 5)[::5] == [5, 10]  # an empty range is widened
    assert [ch.fmt_compact(v) for v in (0, 950, 1_200, 34_000, 1_500_000, 2e9, 0.25)] == [
        "0", "950", "1.2k", "34k", "1.5M", "2B", "0.25",
    ]  # fmt: skip
    assert ch.fmt_pct(0.4) == "40.0 %" and ch.fmt_int(1234567) == "1,234,567"
    assert ch.esc("<a & 'b'>") == "&lt;a &amp; &#x27;b&#x27;&gt;"


def test_day_and_date_ticks() -> None:
    assert [label for _, label in ch.day_ticks(5, 400)] == [
        "1 wk", "2 wk", "1 mo", "2 mo", "3 mo", "6 mo", "1 yr",
    ]  # fmt: skip
    assert ch.day_ticks(0.2, 1.5) == ((0.25, "6 h"), (0.5, "12 h"), (1, "1 d"))
    assert ch.day_ticks(-0.5, 10, whole_days=True) == ((0, "0"), (1, "1 d"), (2, "2 d"), (3, "3 d"),
                                                        (7, "1 wk"))  # fmt: skip
    ticks = ch.date_ticks(dt.date(2023, 7, 1), dt.date(2026, 6, 30))
    assert [label for _, label in ticks] == [
        "Jul 2023", "Jan 2024", "Jul", "Jan 2025", "Jul", "Jan 2026",
    ]  # fmt: skip
    ticks = ch.date_ticks(dt.date(2024, 3, 1), dt.date(2024, 3, 20))
    assert [d.day for d, _ in ticks] == [1, 8, 15]


def test_log_edges_and_whole_days() -> None:
    edges = ch.log_edges(np.array([1.0, 10.0, 100.0]), 2)
    assert edges[0] == pytest.approx(1.0) and edges[1] == pytest.approx(10.0)
    assert edges[2] == pytest.approx(100.0)
    single = ch.log_edges(np.array([30.0, 30.0]), 4)
    assert single[0] < 30 < single[-1]
    assert _whole_days(-0.5, 0.5) == "0 days" and _whole_days(6.5, 9.5) == "7-9 days"


def test_render_report_layout() -> None:
    page = render_report([ReportSection("one", "First <1>", "<p>x</p>", "intro & more")],
                         title="T", subtitle="S")  # fmt: skip
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert '<a href="#one">First &lt;1&gt;</a>' in page
    assert '<p class="intro">intro &amp; more</p>' in page
    assert '<meta charset="utf-8">' in page and "<title>T</title>" in page


# -- writing -----------------------------------------------------------------------------------


def test_destination_checks(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"name it \.html"):
        churn_engine.report(hand_log(), tmp_path / "report.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        churn_engine.report(hand_log(), tmp_path / "missing" / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_the_old_report(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "report.htm"
    out.write_text("old")
    with pytest.raises(churn_engine.SchemaError):
        churn_engine.report(hand_log().drop("amount"), out)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.htm"]  # no temporary left


def test_progress_steps(tmp_path: pathlib.Path) -> None:
    steps: list[str] = []
    churn_engine.report(hand_log(), tmp_path / "r.html", progress=steps.append)
    assert steps[0] == "read" and steps[-2:] == ["charts", "write"]


# -- command line ------------------------------------------------------------------------------


def test_cli_report(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.parquet"
    write_atomic(generate_log(300, seed=3), log)
    out = tmp_path / "report.html"
    argv = ["report", str(log), "-o", str(out), "--as-of", "2026-06-30", "--title", "Shop A"]
    assert cli.main([*argv, "--at-risk-cycles", "1.2"]) == 0
    captured = capsys.readouterr()
    assert f"wrote the report to {out}" in captured.out
    for step in ("read", "charts", "write", "done"):
        assert step in captured.err
    page = out.read_text()
    assert "<title>Shop A</title>" in page and set(figures(page)) == BASE_CHARTS
    assert "1.2 cycles" in page  # the rule drawn on the heat map follows the option
    expected = churn_engine.report(str(log), tmp_path / "api.html", as_of="2026-06-30",
                                   title="Shop A", at_risk_cycles=1.2)  # fmt: skip
    assert expected.read_text() == page

    assert cli.main(["report", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--output", "--as-of", "--events", "--title", "--customer-col",
                   "--horizon-days", "--on-error", "--quiet"):  # fmt: skip
        assert option in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{tmp}/r.pdf"], "name it .html"),
        (["-o", "{tmp}/r.html", "--events", "{tmp}/nope.csv"], "--events file not found"),
        (["-o", "{log}"], "name it .html"),
        (["-o", "{tmp}/r.html", "--churn-cycles", "1"], "--at-risk-cycles"),
    ],
)
def test_cli_report_usage_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    log = tmp_path / "log.parquet"
    write_atomic(hand_log(), log)
    argv = ["report", str(log), *(a.format(tmp=tmp_path, log=log) for a in args)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_cli_report_bad_data_exit_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.parquet"
    write_atomic(hand_log().with_columns(amount=pl.lit(float("nan"))), log)
    assert cli.main(["report", str(log), "-o", str(tmp_path / "r.html"), "-q"]) == 1
    assert "nan" in capsys.readouterr().err.lower()


# -- rendering in a browser --------------------------------------------------------------------

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    """The headless browser, or skip (fail when .ci/run says it must be there)."""
    path = os.environ.get("CHURN_CHROMIUM") or next(
        (p for p in map(shutil.which, _BROWSERS) if p), None
    )
    if path:
        return path
    reason = (
        "headless Chromium not found (looked for CHURN_CHROMIUM and "
        f"{', '.join(_BROWSERS)} on PATH); install Debian's 'chromium' package "
        "(.ci/run does so when it runs as root or with passwordless sudo)"
    )
    why = os.environ.get("CHURN_CHROMIUM_MISSING")
    if why:
        reason += f"; .ci/run could not install it: {why}"
    if os.environ.get("CHURN_REQUIRE_CHROMIUM") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _run_browser(browser: str, profile: pathlib.Path, *args: str) -> str:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Rendered(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, str | None]] = {}
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "body":
            self.body = values
        if "chart" in (values.get("class") or "").split():
            self.charts[values.get("data-chart") or "?"] = values


def test_renders_in_headless_chromium(tmp_path: pathlib.Path) -> None:
    browser = _browser()
    out = churn_engine.report(
        generate_log(3_000, seed=11), tmp_path / "report.html", title="Render test",
        churn_rate=churn_rate_frame(), funnel=funnel_frame(), products=products_frame(),
        actions=actions_frame(),
    )  # fmt: skip
    expected = set(figures(out.read_text()))
    assert expected == BASE_CHARTS | {"churn_rate", "funnel", "product_classes",
                                      "product_classes_revenue"}  # fmt: skip
    profile = tmp_path / "profile"
    dom = _run_browser(browser, profile, "--window-size=1400,900", "--dump-dom", out.as_uri())
    rendered = _Rendered()
    rendered.feed(dom)
    assert set(rendered.charts) == expected
    not_drawn = {n for n, a in rendered.charts.items() if a.get("data-rendered") != "true"}
    assert not not_drawn, f"charts not rendered: {not_drawn}"
    assert all(int(a.get("data-marks") or 0) > 0 for a in rendered.charts.values())
    assert rendered.body.get("data-charts-rendered") == str(len(expected))
    height = int(rendered.body.get("data-page-height") or 0)
    assert height > 900

    shot = tmp_path / "report.png"
    _run_browser(browser, profile, f"--window-size=1400,{height}", f"--screenshot={shot}",
                 out.as_uri())  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, shot_height = struct.unpack(">II", data[16:24])
    assert (width, shot_height) == (1400, height)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = ARTIFACTS / "report.png"
    shutil.copyfile(shot, saved)
    shutil.copyfile(out, ARTIFACTS / "report.html")
    print(f"report screenshot: {saved}")


def test_products_section_from_an_item_column(tmp_path: pathlib.Path) -> None:
    """A log with ``item_id`` gets the product-classes section: items and revenue
    per class as churn_engine.product_classes counts them, and the churned
    customers who bought each class."""
    log = hand_log().with_columns(item_id=pl.Series([1, 2, 1, 3, 2, 2, 1, 1, 4, 3]))
    page = churn_engine.report(log, tmp_path / "r.html", as_of=AS_OF).read_text()
    charts = figures(page)
    assert {"product_classes", "product_classes_revenue"} <= set(charts)
    found = churn_engine.product_classes(log, as_of=AS_OF)
    items = mark_data(charts["product_classes"], "value", "label")
    assert {label: float(v) for (label,), v in items.items()} == {
        c: float(n) for c, n in found.classes.select("class", "items").rows()
    }
    churned = found.churned_mix.filter(pl.col("status") == "churned")
    rows = {r[0]: r for r in table_rows(figures(page, "table")["product_table"])}
    for cls, customers in churned.select("class", "customers").rows():
        assert f"{customers:,}" in rows[cls]
    assert "product_table" not in figures(hand_report(tmp_path), "table")
