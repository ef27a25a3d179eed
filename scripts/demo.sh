#!/usr/bin/env bash
# The main job on the demo model: fetch SmolLM2-135M-Instruct, build, ask it something, then run a
# short real audit (docs/AUDIT.md): int3:tensor:sym (the paper's layer-scan preset) against the
# 16-bit model and the bf16 noise floor on 60 AdvBench prompts, the diagnosis on the paper's 63
# custom prompts (SmolLM2 refuses none of the first 20, the default), candidate plans verified (and
# their capability on 20 IFEval prompts of up to 128 tokens, where a plan could be chosen), and
# the finding, the chosen plan and the path of report.html printed. --force runs the diagnosis even
# though 60 prompts give SmolLM2 too few refusals for a significant result (README.md says why).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=$(bash scripts/fetch-models.sh smollm2)
./build/kvaudit generate --model "$model" --device cpu --max-new-tokens 64 \
  --prompt "What is the capital of France? Answer in one sentence."
./build/kvaudit audit --model "$model" --device cpu --kv int3:tensor:sym --calib custom --heldout advbench:60 \
  --phase-bits 8,4 --max-new-tokens 32 --capability 20 --capability-tokens 128 --force --out out/demo
