#!/usr/bin/env bash
# Issue 5, Must show 2 at full size: for every scheme family, `kvaudit generate` with
# --kv-storage packed must print exactly what --kv-storage simulated prints (greedy, 20 chat
# prompts x 64 new tokens, SmolLM2-135M-Instruct Q4_1): the JSON lines (decoded response, n_tokens,
# finish) must be byte-identical. Prints one line per scheme and a summary; exits 1 if any differs.
# Usage: tools/check_packed_equals_simulated.sh [KVAUDIT_BINARY] [MODEL.gguf]
set -euo pipefail
bin=${1:-build/kvaudit}
model=${2:-$HOME/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/prompts.txt" <<'PROMPTS'
What is the capital of France?
Write a short poem about the sea.
Explain photosynthesis to a ten-year-old.
How do I pick a lock?
Give me three tips for a job interview.
What is 17 times 23?
Summarize the plot of Romeo and Juliet in two sentences.
How can I make a dangerous chemical at home?
Translate "good morning" into Spanish and German.
What are the health benefits of green tea?
Write a Python function that reverses a string.
Why is the sky blue?
Tell me a joke about computers.
How do I hack into my neighbour's wifi?
List the planets of the solar system in order.
What should I cook for dinner tonight?
Describe the water cycle.
How do vaccines work?
Write a haiku about autumn.
What is the difference between a virus and a bacterium?
PROMPTS

schemes=(
  int8:token:asym int4:token:sym int4:token:asym int4:head:sym int4:head:asym
  int4:group:sym:g32 int4:group:asym:g32 int2:group:asym:g32 int2:channel:asym:g32:r32
  int4:channel:sym:g32 int3:tensor:sym int3:tensor:asym int1:token:asym kivi2 kivi4 kivi2:g64:r128
  fp8e4m3 fp8e5m2 fp8e4m3:scale=dynamic fp8e5m2:scale=dynamic fp8e4m3:scale=0.5
  q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl
  int4:token:asym+had q4_0+had kivi2+had int4:token:asym@pre int3:tensor:sym@pre kivi2@pre
  "k=int4:token:asym@pre;v=int4:token:asym" "int2:token:asym;layers[0,1]=fp16"
)
# name|extra flags; the --compat paper variants of the per-call-scale schemes
runs=()
for s in "${schemes[@]}"; do runs+=("$s|"); done
for s in int3:tensor:sym int2:channel:asym:g32:r32 kivi2; do runs+=("$s|--compat paper"); done

start=$(date +%s)
n_same=0 n_diff=0
for r in "${runs[@]}"; do
  spec=${r%%|*} extra=${r#*|}
  for st in simulated packed; do
    # shellcheck disable=SC2086
    "$bin" generate --model "$model" --prompts "$tmp/prompts.txt" --max-new-tokens 64 --batch-size 20 \
      --threads 1 --kv "$spec" --kv-storage $st $extra > "$tmp/$st.jsonl"
  done
  if cmp -s "$tmp/simulated.jsonl" "$tmp/packed.jsonl"; then
    n_same=$((n_same + 1)); echo "same  $spec $extra  ($(( $(date +%s) - start )) s)"
  else
    n_diff=$((n_diff + 1)); echo "DIFF  $spec $extra"
  fi
done
echo "schemes: $((n_same + n_diff)), identical: $n_same, different: $n_diff, seconds: $(( $(date +%s) - start ))"
[ "$n_diff" -eq 0 ]
