#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang; ASan + UBSan on every library) in build-asan and
# runs each for SECONDS (default 120) from its committed seeds, fuzz/corpus/<target>/. New inputs go
# to build-asan/fuzz-corpus/<target>/ (not committed: the seeds stay a few KB each). Every input in
# fuzz/regressions/<target>/ (a crash found earlier, now fixed) is run first.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: every fuzz/*_fuzz.cc)
# Prints one line per target: executions, seconds, corpus entries. A crash stops the script with
# the input in build-asan/fuzz-crashes/<target>/: fix the parser, keep the input under
# fuzz/regressions/<target>/ and add a test that feeds it (docs/ROBUSTNESS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
build=build-asan
targets=("${@:2}")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cc; do t=$(basename "$f" _fuzz.cc); targets+=("$t"); done
fi
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DKVAUDIT_FUZZ=ON -DKVAUDIT_CLI=OFF -DKVAUDIT_CUDA=OFF \
    -DKVAUDIT_BENCH=OFF ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
fi
# KVAUDIT_FUZZ_NO_BUILD=1: the binaries are built already (another job is building the next ones).
[ -n "${KVAUDIT_FUZZ_NO_BUILD:-}" ] || cmake --build "$build" -j"$(nproc)" --target "${targets[@]/%/_fuzz}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
  exe="$build/fuzz/${t}_fuzz" scratch="$build/fuzz-corpus/$t" crashes="$build/fuzz-crashes/$t" log="$build/fuzz-logs/$t.log"
  mkdir -p "$scratch" "$crashes" "$(dirname "$log")"
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    "$exe" -runs=1 fuzz/regressions/"$t"/* >"$log.regressions" 2>&1 || { cat "$log.regressions"; exit 1; }
  fi
  if ! "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
       -artifact_prefix="$crashes/" "$scratch" "fuzz/corpus/$t" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz.sh: $t crashed; the input is in $crashes/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-22s %10s execs %5ss  corpus %s  (seeds %s)\n' "$t" "$runs" "$secs" "$corp" "$(ls "fuzz/corpus/$t" | wc -l)"
done
