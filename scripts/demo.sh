#!/usr/bin/env bash
# The main job on the demo model: fetch SmolLM2-135M-Instruct, build, ask it something, then run a
# short real audit step: a bit-width sweep of int:token:asym (16 = the 16-bit baseline, 8, 6, 5,
# 4, 3, 2) over 24 of the paper's custom prompts, 24 AdvBench and 24 XSTest prompts (32 new tokens
# each, all 7 variants sharing batches), then print the table and the onset bit-width per benchmark.
# README.md says what the numbers show and how long it takes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=$(bash scripts/fetch-models.sh smollm2)
./build/kvaudit generate --model "$model" --device cpu --max-new-tokens 64 \
  --prompt "What is the capital of France? Answer in one sentence."
./build/kvaudit sweep --model "$model" --device cpu --scheme int:token:asym --bits 16,8,6,5,4,3,2 \
  --bench custom,advbench,xstest --limit 24 --seed 1 --max-new-tokens 32 --batch-size 56 --out out/demo
