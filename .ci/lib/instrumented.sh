# Shared by .ci/sanitize, .ci/debug and .ci/fuzz (sourced, not run).
#
# Builds churn-engine into a separate venv from a copy of the work tree (so
# no build output of the work tree, build/ or an in-place .so, is reused and
# the dev venv is not touched), and runs Python under the sanitizers.
#
#   CHURN_CI_WORK=DIR  keep the copy and the venv in DIR (reused next time:
#                      dependencies are installed once, the project is rebuilt
#                      every time); default: a temporary folder removed on exit
#   PYTHON=python3     the interpreter the venv is made from

CI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

# setup_work NAME: sets WORK (and removes it on exit unless CHURN_CI_WORK is set)
setup_work() {
  if [ -n "${CHURN_CI_WORK:-}" ]; then
    WORK=$CHURN_CI_WORK
    mkdir -p "$WORK" || die "cannot create $WORK"
  else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/churn-$1.XXXXXX") || die "mktemp failed"
    # shellcheck disable=SC2064
    trap "rm -rf '$WORK'" EXIT
  fi
  TREE=$WORK/tree
  VENV=$WORK/venv
}

# copy_tree: the work tree without VCS data, build outputs and caches
copy_tree() {
  rm -rf "$TREE" && mkdir -p "$TREE" || die "cannot create $TREE"
  tar -C "$CI_ROOT" \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude='*.so' --exclude=./src/churn_engine/_kernel.c \
    --exclude=./src/churn_engine/_columns.c \
    --exclude='*.html' --exclude=__pycache__ --exclude=./.mypy_cache --exclude=./.ruff_cache \
    --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./.benchmarks \
    --exclude=./benches/.data --exclude=./.fuzz-artifacts \
    -cf - . | tar -C "$TREE" -xf - || die "cannot copy the work tree"
}

# build_venv: pip-installs $TREE (with the test extras) into $VENV; the build
# flags come from the caller's environment (CHURN_SANITIZE / CHURN_DEBUG / CFLAGS)
build_venv() {
  local pylog=$WORK/pip.log
  if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV" || die "cannot create a venv in $VENV"
  fi
  if [ -f "$VENV/.churn-deps-installed" ]; then
    "$VENV/bin/python" -m pip install --no-deps --force-reinstall --no-cache-dir "$TREE" \
      >"$pylog" 2>&1
  else
    "$VENV/bin/python" -m pip install --no-cache-dir "$TREE[test]" >"$pylog" 2>&1 &&
      touch "$VENV/.churn-deps-installed"
  fi || { tail -n 60 "$pylog" >&2; die "pip install failed (log above)"; }
}

# kernel_so: path of the installed compiled kernel
kernel_so() {
  local so
  for so in "$VENV"/lib/python*/site-packages/churn_engine/_kernel*.so; do
    [ -f "$so" ] && { echo "$so"; return 0; }
  done
  return 1
}

# sanitizer_env [files|stderr]: LD_PRELOAD of gcc's ASan runtime (CPython is
# not built with ASan, so the runtime must come first) and the sanitizer
# options. With "files" (the default, for pytest) ASan reports go to files
# under $WORK/reports, so that one from a child process that a test tolerated
# is not lost (gcc's UBSan ignores log_path: its reports always go to
# stderr); with "stderr" (for the fuzzer, whose log is kept) to stderr.
sanitizer_env() {
  local libasan libstdcxx
  libasan=$(gcc -print-file-name=libasan.so)
  [ -f "$libasan" ] || die "gcc has no libasan.so (got '$libasan'); install gcc's ASan runtime"
  # libstdc++ must be loaded when ASan starts, or its __cxa_throw interceptor
  # finds no real __cxa_throw and the first C++ exception (pyarrow and
  # atheris throw them) dies with "CHECK failed: asan_interceptors.cpp"
  libstdcxx=$(gcc -print-file-name=libstdc++.so.6)
  mkdir -p "$WORK/reports" && rm -f "$WORK"/reports/* "$WORK/pytest.log"
  export LD_PRELOAD=$libasan:$libstdcxx
  # CPython leaks by design: no leak checks
  # abort_on_error: a report ends in abort(), which libFuzzer catches to save
  # the crashing input (gcc's UBSan runtime does not call libFuzzer's death
  # callback, so a plain exit would lose it)
  export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:disable_coredump=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
  if [ "${1:-files}" = files ]; then
    ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$WORK/reports/asan:log_exe_name=1"
    UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$WORK/reports/ubsan:log_exe_name=1"
  fi
}

# sanitizer_reports: prints every sanitizer report; returns 1 if there was one
# (libFuzzer's own crash stack traces land in the same files: not counted)
sanitizer_reports() {
  local f found=0
  if [ -f "$WORK/pytest.log" ] && grep -qE "runtime error:|ERROR: AddressSanitizer" "$WORK/pytest.log"; then
    found=1
    echo "----- sanitizer reports in the test output -----" >&2
    grep -E -A 12 "runtime error:|ERROR: AddressSanitizer" "$WORK/pytest.log" | head -n 60 >&2
  fi
  for f in "$WORK"/reports/*; do
    [ -f "$f" ] || continue
    grep -Eq "ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:|Sanitizer: CHECK failed" "$f" ||
      continue
    found=1
    echo "----- sanitizer report $f -----" >&2
    cat "$f" >&2
  done
  return $found
}

# run_tests: pytest on the default kernel-related selection, or on "$@"
run_tests() {
  local -a selection=("$@")
  if [ ${#selection[@]} -eq 0 ]; then
    local t
    for t in tests/test_kernel.py tests/test_packed_rows.py tests/test_selection.py tests/test_columns.py tests/test_prebound_ids.py tests/test_fastprep.py tests/test_string_keys.py \
      tests/test_churn_rate.py tests/test_definitions.py tests/test_bad_input.py tests/properties \
      tests/test_fuzz_regressions.py tests/test_funnel.py tests/test_lifetimes_summary.py; do
      [ -e "$TREE/$t" ] && selection+=("$t")
    done
  fi
  log "pytest ${selection[*]}"
  # --capture=sys: output written to fd 2 by C code (UBSan reports, which gcc's
  # libubsan always writes to stderr) reaches the log even when the process
  # aborts, instead of dying with pytest's fd capture
  (
    cd "$TREE" &&
      PYTHONPATH="$TREE/.ci/lib" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
        --capture=sys -p hypothesis_ci_profile --hypothesis-profile=instrumented "${selection[@]}"
  ) 2>&1 | tee "$WORK/pytest.log"
  return "${PIPESTATUS[0]}"
}
