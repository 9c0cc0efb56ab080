"""The ``churn-engine`` command line: parsing, errors, summary, progress, plumbing.

Most tests stand in for the engine (``Scorer.run`` is monkeypatched) so the
CLI is tested on its own; ``test_score_end_to_end`` and
``test_demo_end_to_end`` run the real engine.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import subprocess
import sys
from typing import Any

import polars as pl
import pytest

from churn_engine import _cli_score, api, cli
from churn_engine._generate import generate_log
from churn_engine._stats import ScoreResult, ScoreStats
from churn_engine._writers import write_atomic
from churn_engine.config import RfmCuts, ScoreConfig
from churn_engine.errors import DataError, SchemaError

SCORE_OPTIONS = [
    "--output", "--as-of", "--customer-col", "--ts-col", "--amount-col", "--category-col",
    "--tz", "--ts-unit", "--at-risk-cycles", "--churn-cycles", "--horizon-days",
    "--prior-weight", "--prior-days", "--rfm-bins", "--on-error", "--rejects", "--cuts-in",
    "--cuts-out", "--threads", "--quiet", "INPUT",
]  # fmt: skip
GENERATE_OPTIONS = [
    "--customers", "--output", "--seed", "--end", "--years", "--string-ids", "--categories",
]  # fmt: skip
DEMO_OPTIONS = ["--customers", "--dir", "--seed", "--quiet"]


# -- helpers -----------------------------------------------------------------


def make_result(*, rejected: dict[str, int] | None = None) -> ScoreResult:
    statuses = ["active"] * 5 + ["at_risk"] * 2 + ["churned"] * 3
    buyer = ["repeat"] * 6 + ["one_time"] * 4
    segments = ["Champions"] * 2 + ["Lost"] * 5 + ["Loyal"] * 3
    customers = pl.DataFrame(
        {
            "customer_id": list(range(100, 110)),
            "buyer_type": buyer,
            "status": statuses,
            "segment": segments,
        }
    )
    rejected = rejected if rejected is not None else {"null_id": 3, "nan_amount": 7}
    stats = ScoreStats(
        rows_read=1_234_567 + sum(rejected.values()) + 11,
        rows_accepted=1_234_567,
        rows_rejected=sum(rejected.values()),
        rows_after_as_of=11,
        rejected_by_reason=dict(rejected),
        customers=10,
        customers_without_purchase=0,
        as_of=dt.date(2026, 6, 30),
        as_of_day=dt.date(2026, 6, 30),
        timings={"read": 0.25, "score": 1.5},
    )
    assert stats.reconciles()
    rejects = pl.DataFrame({"row": [1, 2], "reason": ["null_id", "nan_amount"]})
    cuts = RfmCuts((-90.0, -30.0, -10.0, -2.0), (1.0, 2.0, 3.0, 5.0), (10.0, 20.0, 40.0, 80.0))
    return ScoreResult(customers=customers, cuts=cuts, stats=stats, rejects=rejects)


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace Scorer.run; records each call (config, data, as_of) in the returned list."""
    calls: list[dict[str, Any]] = []

    def run(self: api.Scorer, data: Any, as_of: Any = None, *, progress: Any = None) -> Any:
        calls.append({"config": self.config, "data": data, "as_of": as_of})
        for stage in ("read", "validate", "score", "assemble"):
            if progress is not None:
                progress(stage)
        return make_result()

    monkeypatch.setattr(api.Scorer, "run", run)
    return calls


@pytest.fixture
def log_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "log.parquet"
    write_atomic(generate_log(300, seed=3), path)
    return path


# -- help and parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "options"),
    [("score", SCORE_OPTIONS), ("generate", GENERATE_OPTIONS), ("demo", DEMO_OPTIONS)],
)
def test_subcommand_help(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"churn-engine {command}" in out
    for option in options:
        assert option in out, option


def test_main_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("score", "generate", "demo"):
        assert command in out
    assert cli.main(["--version"]) == 0
    assert "churn-engine" in capsys.readouterr().out


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "choose a command" in capsys.readouterr().err


def test_python_m_entry_point() -> None:
    src = pathlib.Path(cli.__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "churn_engine", "generate", "--help"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": ""},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--customers" in proc.stdout


def test_parse_as_of() -> None:
    assert cli.parse_as_of("2026-06-30") == dt.date(2026, 6, 30)
    value = cli.parse_as_of("2026-06-30T18:00")
    assert isinstance(value, dt.datetime) and value == dt.datetime(2026, 6, 30, 18, 0)
    assert cli.parse_as_of(" 2026-06-30 18:00:05 ") == dt.datetime(2026, 6, 30, 18, 0, 5)
    aware = cli.parse_as_of("2026-06-30T18:00+02:00")
    assert isinstance(aware, dt.datetime) and aware.utcoffset() == dt.timedelta(hours=2)


# -- generate ------------------------------------------------------------------


def test_generate_writes_a_file(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.parquet"
    assert cli.main(["generate", "--customers", "500", "-o", str(path), "--seed", "4"]) == 0
    captured = capsys.readouterr()
    log = pl.read_parquet(path)
    assert log.equals(generate_log(500, seed=4))
    assert f"{log.height:,} rows for 500 customers" in captured.out
    assert str(path) in captured.out
    assert "generate" in captured.err and "write" in captured.err  # progress lines


def test_generate_variants_quiet(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.csv"
    argv = ["generate", "--customers", "200", "-o", str(path), "--string-ids", "--categories"]
    assert cli.main([*argv, "--end", "2025-12-31", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    log = pl.read_csv(path)
    assert log.columns == ["customer_id", "ts", "amount", "category"]
    assert log["ts"].max() < "2026-01-01"
    first = path.read_bytes()
    assert cli.main([*argv, "--end", "2025-12-31", "--quiet"]) == 0
    assert path.read_bytes() == first


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--customers", "0", "-o", "x.parquet"], "at least 1"),
        (["generate", "--customers", "ten", "-o", "x.parquet"], "not a whole number"),
        (["generate", "-o", "x.parquet"], "--customers"),
        (["generate", "--customers", "5"], "--output"),
        (["generate", "--customers", "5", "-o", "x.txt"], ".parquet, .csv"),
        (["generate", "--customers", "5", "-o", "x.parquet", "--end", "June"], "ISO date"),
        (["generate", "--customers", "5", "-o", "x.parquet", "--years", "0"], "years"),
        (["generate", "--customers", "5", "-o", "x.parquet", "--seed", "-1"], "seed"),
        (["generate", "--customers", "5", "-o", "no/such/dir/x.parquet"], "does not exist"),
        (["frobnicate"], "invalid choice"),
        (["score", "LOG", "-o", "out.parquet", "--as-of", "yesterday"], "ISO date"),
        (["score", "LOG", "-o", "out.parquet", "--on-error", "ignore"], "invalid choice"),
        (["score", "LOG", "-o", "out.parquet", "--ts-unit", "h"], "invalid choice"),
        (["score", "LOG", "-o", "out.parquet", "--horizon-days", "1.5"], "invalid int"),
        (["score", "LOG"], "--output"),
        (["score", "LOG", "-o", "out.xlsx"], ".parquet, .csv"),
        (["score", "missing.parquet", "-o", "out.parquet"], "input file not found"),
        (["score", "LOG", "-o", "out.parquet", "--at-risk-cycles", "3"], "--at-risk-cycles"),
        (["score", "LOG", "-o", "out.parquet", "--churn-cycles", "nan"], "--churn-cycles"),
        (["score", "LOG", "-o", "out.parquet", "--horizon-days", "0"], "--horizon-days"),
        (["score", "LOG", "-o", "out.parquet", "--rfm-bins", "12"], "--rfm-bins"),
        (["score", "LOG", "-o", "out.parquet", "--threads", "0"], "threads"),
        (["score", "LOG", "-o", "out.parquet", "--ts-col", "customer_id"], "must differ"),
        (["score", "LOG", "-o", "out.parquet", "--rejects", "r.txt"], ".parquet, .csv"),
        (
            ["score", "LOG", "-o", "out.parquet", "--rejects", "r.csv", "--on-error", "raise"],
            "--rejects needs --on-error quarantine",
        ),
        (["score", "LOG", "-o", "out.parquet", "--rejects", "out.parquet"], "same file"),
        (["score", "LOG", "-o", "LOG"], "overwrite INPUT"),
        (["score", "LOG", "-o", "out.parquet", "--cuts-in", "nope.json"], "not found"),
        (["score", "LOG", "-o", "out.parquet", "--cuts-in", "BAD_JSON"], "not valid JSON"),
        (["score", "LOG", "-o", "out.parquet", "--cuts-in", "BAD_CUTS"], "missing key"),
        (["score", "LOG", "-o", "out.parquet", "--cuts-in", "CUTS", "--rfm-bins", "3"], "bins"),
        (["demo", "--customers", "-3"], "at least 1"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str],
    message: str,
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    fake_engine: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "badcuts.json").write_text('{"recency": [1, 2]}')
    cuts = make_result().cuts
    assert cuts is not None
    (tmp_path / "cuts.json").write_text(json.dumps(cuts.to_dict()))
    names = {
        "LOG": log_file.name,
        "BAD_JSON": "bad.json",
        "BAD_CUTS": "badcuts.json",
        "CUTS": "cuts.json",
    }
    argv = [names.get(arg, arg) for arg in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert sum(": error: " in line for line in err.splitlines()) == 1
    assert fake_engine == []  # nothing ran
    assert not (tmp_path / "out.parquet").exists()


# -- score, with a stand-in engine ---------------------------------------------------


def test_score_plumbing(
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    fake_engine: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, rejects, cuts = tmp_path / "s.csv", tmp_path / "r.parquet", tmp_path / "cuts.json"
    argv = [
        "score", str(log_file), "-o", str(out), "--as-of", "2026-06-30T12:00",
        "--rejects", str(rejects), "--cuts-out", str(cuts), "--customer-col", "cid",
        "--category-col", "cat", "--tz", "Europe/Berlin", "--at-risk-cycles", "1.2",
        "--churn-cycles", "2.5", "--horizon-days", "400", "--prior-weight", "2",
        "--prior-days", "30", "--rfm-bins", "5", "--threads", "2",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    (call,) = fake_engine
    assert call["data"] == str(log_file)
    assert call["as_of"] == dt.datetime(2026, 6, 30, 12, 0)
    config: ScoreConfig = call["config"]
    assert config.on_error == "quarantine"  # implied by --rejects
    assert (config.customer_col, config.category_col, config.tz) == ("cid", "cat", "Europe/Berlin")
    assert (config.at_risk_cycles, config.churn_cycles, config.horizon_days) == (1.2, 2.5, 400)
    assert (config.prior_weight, config.prior_days, config.threads) == (2.0, 30.0, 2)

    expected = make_result()
    assert pl.read_csv(out).equals(expected.customers)
    assert pl.read_parquet(rejects).equals(expected.rejects)
    assert json.loads(cuts.read_text()) == expected.cuts.to_dict()  # type: ignore[union-attr]

    captured = capsys.readouterr()
    assert "churn rate" in captured.out
    assert f"wrote 10 rows to {out}" in captured.out
    for stage in ("read", "validate", "score", "assemble", "write", "done"):
        assert stage in captured.err
    assert "\r" not in captured.err  # not a terminal: plain lines


def test_score_defaults_and_cuts_in(
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    fake_engine: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cuts = tmp_path / "cuts.json"
    cuts.write_text(json.dumps(make_result().cuts.to_dict()))  # type: ignore[union-attr]
    out = tmp_path / "s.parquet"
    assert cli.main(["score", str(log_file), "-o", str(out), "--cuts-in", str(cuts), "-q"]) == 0
    (call,) = fake_engine
    assert call["as_of"] is None
    config: ScoreConfig = call["config"]
    assert config == ScoreConfig(cuts=make_result().cuts)
    assert out.exists()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_score_quarantine_without_rejects_file_warns(
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    fake_engine: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "s.arrow"
    assert cli.main(["score", str(log_file), "-o", str(out), "--on-error", "quarantine"]) == 0
    assert "10 rejected rows not saved" in capsys.readouterr().err
    assert pl.read_ipc(out).equals(make_result().customers)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (DataError("null customer_id at row 7", column="customer_id", row=7), 1),
        (SchemaError("column 'ts' is missing"), 1),
        (pl.exceptions.ComputeError("parquet: File out of specification\n\nplan..."), 1),
        (PermissionError(13, "Permission denied", "s.parquet"), 1),
        (FileNotFoundError(2, "No such file or directory", "gone.parquet"), 2),
    ],
)
def test_score_engine_errors(
    exc: Exception,
    code: int,
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(self: api.Scorer, data: Any, as_of: Any = None, *, progress: Any = None) -> Any:
        progress("read")
        raise exc

    monkeypatch.setattr(api.Scorer, "run", run)
    out = tmp_path / "s.parquet"
    assert cli.main(["score", str(log_file), "-o", str(out)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "failed" in err  # the progress display says so
    error_line = [line for line in err.splitlines() if "error:" in line]
    assert error_line and error_line[0].startswith("churn-engine: error: ")
    assert "plan..." not in err
    assert not out.exists()


def test_keyboard_interrupt(
    tmp_path: pathlib.Path,
    log_file: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(self: api.Scorer, data: Any, as_of: Any = None, *, progress: Any = None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(api.Scorer, "run", run)
    assert cli.main(["score", str(log_file), "-o", str(tmp_path / "s.parquet"), "-q"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_demo_plumbing(
    tmp_path: pathlib.Path,
    fake_engine: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "new" / "demo"
    reports: list[tuple[Any, Any, Any]] = []
    monkeypatch.setattr(
        _cli_score, "report",
        lambda data, output, *, as_of, progress: reports.append((data, output, as_of)),
    )  # fmt: skip
    assert cli.main(["demo", "--customers", "300", "--dir", str(folder), "--seed", "2"]) == 0
    (call,) = fake_engine
    assert reports == [(call["data"], folder / "report.html", cli.DEFAULT_END)]
    assert call["data"] == str(folder / "transactions.parquet")
    assert call["as_of"] == cli.DEFAULT_END
    assert pl.read_parquet(folder / "transactions.parquet").equals(generate_log(300, seed=2))
    assert (folder / "scores.parquet").exists()
    out = capsys.readouterr().out
    assert "churn rate" in out
    assert str(folder / "scores.parquet") in out
    assert str(folder / "report.html") in out


# -- summary -------------------------------------------------------------------


def test_format_summary() -> None:
    text = cli.format_summary(make_result(), 2.5)
    lines = text.splitlines()

    def line(label: str) -> str:
        (found,) = [item for item in lines if item.strip().startswith(label)]
        return found

    assert "1,234,588" in line("rows read")
    assert "1,234,567" in line("accepted")
    assert "10" in line("rejected") and "(nan_amount: 7, null_id: 3)" in line("rejected")
    assert "11" in line("after as_of")
    assert "10" in line("customers")
    assert "2026-06-30" in line("as of")
    assert "5" in line("active") and "50.0 %" in line("active")
    assert "20.0 %" in line("at_risk")
    assert "30.0 %" in line("churned")
    assert "30.0 %" in line("churn rate")
    assert "60.0 %" in line("repeat") and "40.0 %" in line("one_time")
    order = [lines.index(line(name)) for name in ("Lost", "Loyal", "Champions")]
    assert order == sorted(order)  # by count, most common first
    assert "50.0 %" in line("Lost")
    assert "2.50 s" in line("time")
    assert "read 0.25 s, score 1.50 s" in line("stages:")
    assert lines.index("status") < lines.index("buyer type") < lines.index("segment")


def test_format_summary_edge_cases() -> None:
    base = make_result(rejected={})
    empty = pl.DataFrame(
        {"customer_id": [], "buyer_type": [], "status": [], "segment": []},
        schema={"customer_id": pl.Int64, "buyer_type": pl.String, "status": pl.String,
                "segment": pl.String},
    )  # fmt: skip
    stats = ScoreStats(**{**base.stats.to_dict(), "customers": 0, "as_of": None,
                          "as_of_day": None, "timings": {}})  # fmt: skip
    text = cli.format_summary(ScoreResult(empty, None, stats), 0.0)
    assert "churn rate" in text and "rejected" in text and "(" not in text.split("\n")[2]

    # Null segments (rfm_bins != 5) and a datetime as_of; customer x category rows.
    customers = base.customers.with_columns(segment=pl.lit(None, dtype=pl.String))
    as_of = dt.datetime(2026, 6, 30, 18, 0)
    stats = ScoreStats(**{**base.stats.to_dict(), "customers": 4, "as_of": as_of})
    text = cli.format_summary(ScoreResult(customers, None, stats), 1.0)
    assert "(no segment)" in text
    assert "2026-06-30 18:00:00" in text
    assert "customer x category" in text


def test_progress_on_a_terminal() -> None:
    stream = io.StringIO()
    with cli.Progress(stream, tty=True) as progress:
        progress("read")
        progress("score")
    text = stream.getvalue()
    assert text.count("\r") >= 3 and text.endswith("\n")
    assert "read" in text and "score" in text and "done in" in text
    assert text.count("\n") == 1  # a single status line, redrawn


def test_progress_disabled_and_plain() -> None:
    stream = io.StringIO()
    with cli.Progress(stream, enabled=False) as progress:
        progress("read")
    assert stream.getvalue() == ""
    stream = io.StringIO()
    with cli.Progress(stream, tty=False) as progress:
        progress("read")
        progress("score")
    lines = stream.getvalue().splitlines()
    assert [line.split("] ")[1] for line in lines] == ["read", "score", "done"]
    assert all(line.startswith("[") and " s] " in line for line in lines)


# -- end to end (need the engine) ----------------------------------------------


def test_score_end_to_end(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.csv"
    write_atomic(generate_log(2_000, seed=9, string_ids=True), log)
    out, cuts = tmp_path / "scores.parquet", tmp_path / "cuts.json"
    argv = ["score", str(log), "-o", str(out), "--as-of", "2026-06-30", "--cuts-out", str(cuts)]
    assert cli.main(argv) == 0
    scores = pl.read_parquet(out)
    assert scores.height == 2_000
    assert scores["customer_id"].is_sorted()
    assert set(scores["status"].unique()) <= {"active", "at_risk", "churned"}
    assert {"active", "churned"} <= set(scores["status"].unique())
    summary = capsys.readouterr().out
    assert "churn rate" in summary and "2,000" in summary

    # Reusing the cut points on the same data gives the same scores.
    again = tmp_path / "again.parquet"
    argv = ["score", str(log), "-o", str(again), "--as-of", "2026-06-30", "--cuts-in", str(cuts)]
    assert cli.main([*argv, "-q"]) == 0
    assert pl.read_parquet(again).equals(scores)


def test_demo_end_to_end(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--customers", "2000", "--dir", str(tmp_path), "--quiet"]) == 0
    scores = pl.read_parquet(tmp_path / "scores.parquet")
    assert scores.height == 2_000
    out = capsys.readouterr().out
    assert "churn rate" in out and str(tmp_path / "transactions.parquet") in out
