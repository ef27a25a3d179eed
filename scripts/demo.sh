#!/usr/bin/env bash
# The main job on the demo model: fetch SmolLM2-135M-Instruct, build, and ask it something.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=$(bash scripts/fetch-models.sh smollm2)
./build/kvaudit generate --model "$model" --device cpu --max-new-tokens 64 \
  --prompt "What is the capital of France? Answer in one sentence."
