"""docs/cdnow.md quotes examples/cdnow.py and the CLI on the CDNOW log: keep it current.

Every ```text block of the page that starts with ``$ COMMAND`` is an excerpt
of what COMMAND prints (``...`` lines stand for lines left out): the commands
are run here on the log the example writes, and each excerpt must appear in
their output, in order. The figures quoted in the page's prose must be
printed by one of them too, and a few headline numbers are spelled out below
so the issue's closing note can cite them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("lifetimes")  # the CDNOW log is lifetimes' package data
pytest.importorskip("scipy")  # BG/NBD

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cdnow.py"
DOC = ROOT / "docs" / "cdnow.md"
SCRIPT = "python examples/cdnow.py"

BLOCK = re.compile(r"^```text\n(.*?)^```", re.MULTILINE | re.DOTALL)
# a count with thousands separators, or a decimal number (percentages included)
FIGURE = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d.])|\d+\.\d+")


def _blocks() -> list[tuple[str, list[str]]]:
    """(command, excerpt lines) of every quoted output block of the page."""
    found = []
    for body in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        lines = body.rstrip("\n").split("\n")
        if lines[0].startswith("$ "):
            found.append((lines[0][2:].strip(), lines[1:]))
    return found


def _run_example(workdir: Path) -> str:
    spec = importlib.util.spec_from_file_location("cdnow_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert module.main(["--out", str(workdir)]) == 0
    return out.getvalue()


def _run_cli(command: str, workdir: Path) -> str:
    from churn_engine.cli import main

    args = shlex.split(command)
    assert args[0] == "churn-engine", command
    out = io.StringIO()
    previous = Path.cwd()
    os.chdir(workdir)  # the page's commands name files relative to the example's --out
    try:
        with contextlib.redirect_stdout(out):
            assert main(args[1:]) == 0, command
    finally:
        os.chdir(previous)
    return out.getvalue()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdnow")


@pytest.fixture(scope="module")
def outputs(workdir: Path) -> dict[str, str]:
    """What each command quoted in the page prints (the example's output under SCRIPT)."""
    printed = {SCRIPT: _run_example(workdir)}
    for command, _ in _blocks():
        if not command.startswith(SCRIPT) and command not in printed:
            printed[command] = _run_cli(command, workdir)
    return printed


def _output_of(command: str, outputs: dict[str, str]) -> str:
    return outputs[SCRIPT] if command.startswith(SCRIPT) else outputs[command]


def test_example_writes_the_cdnow_log(workdir: Path, outputs: dict[str, str]) -> None:
    # (the outputs fixture runs the example, which writes the log into workdir)
    log = pl.read_parquet(workdir / "cdnow.parquet")
    assert log.schema == pl.Schema({"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64})
    # lifetimes' CDNOW_master.txt: 69,659 rows, 23,570 customers, 1997-01-01 .. 1998-06-30
    assert log.height == 69_659
    assert log["customer_id"].n_unique() == 23_570
    assert (str(log["ts"].min()), str(log["ts"].max())) == ("1997-01-01", "1998-06-30")


def test_every_quoted_block_is_current(outputs: dict[str, str]) -> None:
    blocks = _blocks()
    assert len(blocks) >= 8, "docs/cdnow.md lost its quoted outputs"
    for command, lines in blocks:
        text = "\n".join(line.rstrip() for line in _output_of(command, outputs).split("\n"))
        position = 0
        chunk: list[str] = []
        for line in [*lines, "..."]:
            if line != "...":
                chunk.append(line.rstrip())
                continue
            if chunk:
                excerpt = "\n".join(chunk)
                found = text.find(excerpt, position)
                assert found >= 0, f"stale block of `{command}` in docs/cdnow.md:\n{excerpt}"
                position = found + len(excerpt)
            chunk = []


def test_every_figure_in_the_text_is_printed(outputs: dict[str, str]) -> None:
    prose = BLOCK.sub("", DOC.read_text(encoding="utf-8"))
    prose = re.sub(r"^```.*?^```", "", prose, flags=re.MULTILINE | re.DOTALL)  # bash blocks
    printed = "\n".join(outputs.values())
    missing = sorted({f for f in FIGURE.findall(prose) if f not in printed})
    assert not missing, f"figures in docs/cdnow.md that no command prints: {missing}"


def test_headline_numbers(outputs: dict[str, str]) -> None:
    script = outputs[SCRIPT]
    # status mix as of 1998-06-30: every one-time buyer is past the 365-day rule
    assert "  one_time         0        0   12,054     12,054   51.1 %" in script
    assert "  all          5,083      833   17,654     23,570  100.0 %" in script
    # backtest 1997-09-30, 273 days: churned repeat buyers came back 38.8 % of the time
    assert "  churned      4,491     1,742       38.8 %          61.2 %" in script
    assert "  2–3                      981       534       54.4 %          45.6 %" in script
    assert "  ≥3                     3,510     1,208       34.4 %          65.6 %" in script
    assert "(best 76.1%); no churn_cycles suggested" in script
    assert "at_risk_cycles  7.3    precision 75.0 %" in script
    # backtest 1997-12-31, 181 days
    assert "(best 85.6%); no churn_cycles suggested" in script
    assert "at_risk_cycles  2.8    precision 75.2 %" in script
    # p_alive: 1 for every one-time buyer; agreement with the rule on repeat buyers
    assert "  one_time churned no_purchase_365d     12,054  1.000   1.000  1.000  1.000" in script
    assert "the two agree on 10,049 of 11,516 repeat buyers (87.3 %)" in script
    # head to head on the repeat buyers at 1997-09-30: F1 0.614 (rule) vs 0.603 (p_alive < 0.5)
    assert "61.2 %  61.7 %  0.614" in script
    assert "64.4 %  56.6 %  0.603" in script
    # the parameters agree with lifetimes' BetaGeoFitter
    assert "largest relative difference of a parameter: below 1e-9" in script
