#!/usr/bin/env bash
# Builds the text libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 120)
# on its committed corpus (fuzz/corpus/<target>/, new finds are added there; keep it small).
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (targets: text_tokenizer text_template kv_spec; default all)
# A crash input lands in ./crash-*; keep it under fuzz/regressions/ with a test in tests/text/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
out=build-fuzz
mkdir -p "$out"
srcs="src/core/*.cc src/io/*.cc src/text/*.cc src/text/jinja/*.cc src/kv/*.cc src/kv/schemes/*.cc"
flags=(-std=c++20 -O1 -g -march=x86-64-v3 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Isrc -DKVAUDIT_FIXTURES="\"$PWD/tests/fixtures\"" -DKVAUDIT_VERSION="\"fuzz\"" -DKVAUDIT_SOURCE_DIR="\"$PWD\"")
targets=("${@:2}")
[ ${#targets[@]} -eq 0 ] && targets=(text_tokenizer text_template kv_spec)
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  clang++ "${flags[@]}" fuzz/${t}_fuzz.cc $srcs -lfmt -lpcre2-8 $(pkg-config --libs icu-uc) -o "$out/${t}_fuzz"
  mkdir -p "fuzz/corpus/$t"
  "$out/${t}_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 "fuzz/corpus/$t"
done
