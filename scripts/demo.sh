#!/usr/bin/env bash
# The main job on the demo model: fetch SmolLM2-135M-Instruct, build, ask it something, then run a
# small audit step (8 AdvBench prompts, 16-bit baseline vs two KV schemes) and print the table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=$(bash scripts/fetch-models.sh smollm2)
./build/kvaudit generate --model "$model" --device cpu --max-new-tokens 64 \
  --prompt "What is the capital of France? Answer in one sentence."
./build/kvaudit eval --model "$model" --device cpu --bench advbench --limit 8 --seed 1 \
  --max-new-tokens 48 --kv int4:token:asym --kv q4_0 --out out/demo
