#!/usr/bin/env bash
# Checks kvaudit's llama.cpp KV types against llama.cpp itself (issue 9 item 8): perplexity ratios to
# the 16-bit cache for K-only and V-only q4_0 and q8_0, llama.cpp's llama-perplexity beside
# `kvaudit ppl` on the same tokens and the same scored positions. Target: ratios within 1%.
#
# llama.cpp is built from source by hand and never committed, e.g. (CPU, 2 cores: ~15 min):
#   cmake -S llama.cpp -B llama.cpp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
#         -DLLAMA_CURL=OFF -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF
#   cmake --build llama.cpp/build --target llama-perplexity -j2
#
# Usage: LLAMA_PERPLEXITY=/path/to/llama-perplexity [KVAUDIT=build/kvaudit] [CHUNKS=32] [THREADS=2] \
#        [MODEL=file.gguf] bash tools/check_llama_cpp_kv.sh
#
# CHUNKS=32 by default: on 8 chunks K q4_0's ratio still moves by +-1.5% from chunk to chunk (llama.cpp
# alone), so 8 can miss the 1% target by noise (docs/KV_SCHEMES.md has both). On this loaded 2-core
# machine, 32 chunks took 10-17 min per llama-perplexity run and 17 min for kvaudit's f16 + K q4_0
# (one thread each); 8 chunks, the whole script, 14 min.
#
# Windows: llama-perplexity (ctx 512) splits the tokenized text into chunks of 512 tokens and scores
# the targets predicted from positions 256..510 of each chunk (255 per chunk); SmolLM2's GGUF has
# add_bos_token = false, so no chunk's first token is replaced by BOS. kvaudit matches it with
# `--window 512 --stride 512 --score-from 256 --max-windows CHUNKS`. llama.cpp quantizes V only with
# flash attention (-fa), so V ratios are taken against an f16 run with -fa and K ratios against one
# without.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_PERPLEXITY=${LLAMA_PERPLEXITY:?set LLAMA_PERPLEXITY to a llama-perplexity binary built from llama.cpp}
KVAUDIT=${KVAUDIT:-build/kvaudit}
CHUNKS=${CHUNKS:-32}
THREADS=${THREADS:-2}
MODEL=${MODEL:-$(bash scripts/fetch-models.sh smollm2)}
TEXT=${TEXT:-../shared/datasets/wikitext2_test/wikitext2_test.txt}
OUT=${OUT:-$(mktemp -d)}

llama_ppl() {  # name, then llama-perplexity flags -> prints the final PPL
  local name=$1
  shift
  "$LLAMA_PERPLEXITY" -m "$MODEL" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" "$@" > "$OUT/llama_$name.log" 2>&1
  sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$OUT/llama_$name.log"
}

echo "model $MODEL, $CHUNKS chunks of 512, logs in $OUT" >&2
declare -A L
L[f16]=$(llama_ppl f16)
L[f16_fa]=$(llama_ppl f16_fa -fa)
L[k_q4_0]=$(llama_ppl k_q4_0 -ctk q4_0)
L[k_q8_0]=$(llama_ppl k_q8_0 -ctk q8_0)
L[v_q4_0]=$(llama_ppl v_q4_0 -fa -ctv q4_0)
L[v_q8_0]=$(llama_ppl v_q8_0 -fa -ctv q8_0)

"$KVAUDIT" ppl --model "$MODEL" --text "$TEXT" --device cpu --threads "$THREADS" --quiet --json \
  --window 512 --stride 512 --score-from 256 --max-windows "$CHUNKS" \
  --kv k=q4_0 --kv k=q8_0 --kv v=q4_0 --kv v=q8_0 > "$OUT/kvaudit.json"

python3 - "$OUT/kvaudit.json" "${L[f16]}" "${L[f16_fa]}" "${L[k_q4_0]}" "${L[k_q8_0]}" "${L[v_q4_0]}" "${L[v_q8_0]}" <<'EOF'
import json, sys
k = json.load(open(sys.argv[1]))["results"]
f16, f16_fa, kq4, kq8, vq4, vq8 = map(float, sys.argv[2:8])
print(f"{'cache':8} {'llama.cpp ppl':>13} {'ratio':>7} {'kvaudit ppl':>11} {'ratio':>7} {'diff':>7}")
print(f"{'f16':8} {f16:13.4f} {'':>7} {k['fp16']['ppl']:11.4f}")
print(f"{'f16 -fa':8} {f16_fa:13.4f}")
worst = 0.0
for name, ppl, base in [("k=q4_0", kq4, f16), ("k=q8_0", kq8, f16), ("v=q4_0", vq4, f16_fa), ("v=q8_0", vq8, f16_fa)]:
    ours = k[name]["ppl_ratio"]
    diff = ours / (ppl / base) - 1
    worst = max(worst, abs(diff))
    print(f"{name:8} {ppl:13.4f} {ppl / base:7.4f} {k[name]['ppl']:11.4f} {ours:7.4f} {100 * diff:+6.2f}%")
print(f"worst ratio difference {100 * worst:.2f}% ({'within' if worst <= 0.01 else 'OUTSIDE'} the 1% target)")
sys.exit(0 if worst <= 0.01 else 1)
EOF
