"""Fault safety of ``churn-engine score``: SIGKILL at random moments.

A real transaction log (``generate_log``, 100,000 customers by default) is
scored by ``python -m churn_engine score IN -o OUT`` in a subprocess that is
killed with SIGKILL after a seeded random delay. The delays are spread over
the whole run (interpreter start, read, kernel stages, write), with a third
of them aimed at the write stage, whose window is measured on a reference
run (about 0.5-1 s for the default 100,000 customers, ~540,000 rows). In
half of the trials OUT already holds a complete output before the run
starts. After every kill:

- OUT is absent (no earlier output) or byte-identical to the reference
  output: a reader never sees a torn file;
- an existing OUT is either untouched (same inode) or replaced by the
  complete new file (new inode, same bytes);
- nothing is left in the folder but OUT and, at most, temporary files that
  are clearly named as such (``.OUT.<hex>.tmp``: dot-prefixed, ``.tmp``
  suffix, so no glob like ``*.parquet`` picks them up). SIGKILL cannot be
  caught, so such leftovers are expected when the kill lands inside the
  write; they are counted and reported.

Finally, reruns on the same input give byte-identical Parquet, CSV and Arrow
files (also with a different thread count).

Outcome counts are printed (``pytest -s`` shows them). Knobs:
``CHURN_FAULT_TRIALS`` (default 50), ``CHURN_FAULT_SEED``,
``CHURN_FAULT_CUSTOMERS`` (default 100000).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import churn_engine
from churn_engine._generate import generate_log

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGKILL and inode checks need POSIX"
)

TRIALS = int(os.environ.get("CHURN_FAULT_TRIALS", "50"))
SEED = int(os.environ.get("CHURN_FAULT_SEED", "20240601"))
CUSTOMERS = int(os.environ.get("CHURN_FAULT_CUSTOMERS", "100000"))
AS_OF = "2026-06-30"

#: progress lines of the CLI on a non-terminal stderr: "[    0.3 s] write"
_PROGRESS = re.compile(r"^\[\s*[\d.]+ s\] (?P<stage>.+)$")


def _env() -> dict[str, str]:
    """The environment of the child: the churn_engine this test imports."""
    env = dict(os.environ)
    package_root = str(pathlib.Path(churn_engine.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONHASHSEED", None)  # reruns must not depend on a fixed hash seed
    return env


def _command(src: pathlib.Path, out: pathlib.Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "churn_engine", "score", str(src), "-o", str(out),
            "--as-of", AS_OF, *extra]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Reference:
    src: pathlib.Path
    output: bytes
    duration: float  # seconds from spawn to exit
    write_start: float  # seconds from spawn to the "write" progress line


def _timed_run(src: pathlib.Path, out: pathlib.Path) -> tuple[float, float]:
    """Run to completion; (total seconds, seconds until the write stage began)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        _command(src, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    write_start = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        match = _PROGRESS.match(line.strip())
        if match and match["stage"] == "write" and write_start is None:
            write_start = time.perf_counter() - start
    rc = proc.wait()
    duration = time.perf_counter() - start
    assert rc == 0, "".join(lines)
    assert write_start is not None, "no 'write' progress line:\n" + "".join(lines)
    return duration, write_start


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("fault")
    src = folder / "transactions.parquet"
    generate_log(CUSTOMERS, seed=3).write_parquet(src)
    out = folder / "reference.parquet"
    # the first run also warms the page cache
    runs = [_timed_run(src, out) for _ in range(2)]
    duration = min(r[0] for r in runs)
    write_start = min(r[1] for r in runs)
    return Reference(src, out.read_bytes(), duration, write_start)


_TEMP_NAME = re.compile(r"^\.(?P<dest>.+)\.[0-9a-f]+\.tmp$")


def _last_stage(log: pathlib.Path) -> str:
    stage = "startup"  # interpreter start and imports, before any progress line
    for line in log.read_text(errors="replace").splitlines():
        match = _PROGRESS.match(line.strip())
        if match and match["stage"] not in ("done", "failed"):
            stage = match["stage"]
    return stage


def test_sigkill_never_leaves_a_torn_output(reference: Reference, tmp_path: pathlib.Path) -> None:
    rng = random.Random(SEED)
    outcomes: collections.Counter[str] = collections.Counter()
    stages: collections.Counter[str] = collections.Counter()
    temps_left = 0
    failures: list[str] = []
    start = time.perf_counter()
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial:03d}"
        folder.mkdir()
        out = folder / "scores.parquet"
        preexisting = trial % 2 == 1
        old_inode = None
        if preexisting:  # a complete output of an earlier run
            out.write_bytes(reference.output)
            old_inode = out.stat().st_ino
        if trial % 3 == 2:  # aim at the write stage (and just after it)
            delay = rng.uniform(reference.write_start - 0.05, reference.duration + 0.05)
        else:  # anywhere in the run, including interpreter start
            delay = rng.uniform(0.0, reference.duration * 1.1)
        delay = max(delay, 0.0)

        log = folder / "stderr.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                _command(reference.src, out), stdout=subprocess.DEVNULL, stderr=err, env=_env()
            )
            time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
        if killed and rc != -signal.SIGKILL:
            killed = False  # the run ended between poll() and the signal
        stage = _last_stage(log) if killed else "finished"
        stages[stage] += 1
        where = f"trial {trial} (delay {delay:.3f} s, stage {stage})"
        if not killed and rc != 0:
            failures.append(f"{where}: exit code {rc}: {log.read_text()[-2000:]}")

        # what is left in the folder
        for entry in sorted(folder.iterdir()):
            if entry.name in (out.name, log.name):
                continue
            match = _TEMP_NAME.match(entry.name)
            if match and match["dest"] == out.name and entry.is_file():
                temps_left += 1
                entry.unlink()
            else:
                failures.append(f"{where}: stray file {entry.name!r} beside the output")

        if not out.exists():
            state = "absent"
            if preexisting:
                failures.append(f"{where}: the earlier complete output was removed")
            elif not killed:
                failures.append(f"{where}: finished without writing the output")
        elif out.read_bytes() != reference.output:
            state = "TORN"
            failures.append(f"{where}: output differs from the reference output")
        elif preexisting:
            state = "replaced" if out.stat().st_ino != old_inode else "untouched"
        else:
            state = "complete"
        outcomes[f"{'kept' if preexisting else 'none'} before -> {state}"] += 1
        shutil.rmtree(folder)
    elapsed = time.perf_counter() - start

    print(
        f"\nSIGKILL trials: {TRIALS} in {elapsed:.1f} s (seed {SEED}, {CUSTOMERS:,} customers;"
        f" reference run {reference.duration:.2f} s, write from {reference.write_start:.2f} s)"
    )
    print("  stage at kill:")
    for stage, count in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"    {stage:<28}{count:>4}")
    print("  output afterwards (earlier output -> state):")
    for outcome, count in sorted(outcomes.items()):
        print(f"    {outcome:<28}{count:>4}")
    print(f"  temporary files left by the kill (.scores.parquet.<hex>.tmp): {temps_left}")
    assert not failures, "\n".join(failures)
    assert sum(stages.values()) == TRIALS


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".arrow"])
def test_reruns_are_byte_identical(
    reference: Reference, tmp_path: pathlib.Path, suffix: str
) -> None:
    outputs = []
    for run, extra in enumerate([(), (), ("--threads", "1")]):
        out = tmp_path / f"run{run}{suffix}"
        subprocess.run(
            _command(reference.src, out, "-q", *extra), check=True, env=_env(),
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1], f"two runs gave different {suffix} files"
    assert outputs[0] == outputs[2], f"--threads 1 gave a different {suffix} file"
    if suffix == ".parquet":
        assert outputs[0] == reference.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run{i}{suffix}" for i in range(3)]
