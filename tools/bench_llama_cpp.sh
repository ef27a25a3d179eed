#!/usr/bin/env bash
# Batch-1 decode, batch-32 decode and prefill of kvaudit beside llama.cpp built from source (issue 14
# item 3): same model, threads, prompt and generation lengths, run back to back in one script with
# the load average recorded before and after each. llama.cpp is never committed: the source comes
# from a bare git directory ($LLAMA_GIT, e.g. the `fetch` tool's /work/.mirror/ggerganov+llama.cpp/repo)
# or an existing source tree ($LLAMA_SRC) and is built under $LLAMA_SRC/build (CPU only; ~15 min on
# 2 cores, once).
#
# Usage: [LLAMA_GIT=dir.git | LLAMA_SRC=/tmp/llama.cpp-src] [KVAUDIT=build/kvaudit] [MODEL=f.gguf]
#        [THREADS=2] [PROMPT=96] [GEN=64] [REPEAT=3] [ROUNDS=1] bash tools/bench_llama_cpp.sh [--build-only]
# REPEAT: runs per measurement on each side (llama-bench -r, kvaudit bench --repeat); ROUNDS: how
# many times the pair llama.cpp, kvaudit is run.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_SRC=${LLAMA_SRC:-/tmp/llama.cpp-src}
KVAUDIT=${KVAUDIT:-build/kvaudit}
MODEL=${MODEL:-$(bash scripts/fetch-models.sh smollm2)}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-96}
GEN=${GEN:-64}
REPEAT=${REPEAT:-3}
BENCH=$LLAMA_SRC/build/bin/llama-bench

if [[ ! -x $BENCH ]]; then
  if [[ ! -f $LLAMA_SRC/CMakeLists.txt ]]; then
    : "${LLAMA_GIT:?set LLAMA_GIT to a bare llama.cpp git directory or LLAMA_SRC to a source tree}"
    mkdir -p "$LLAMA_SRC"
    # models/ holds large vocab files a snapshot may lack; the build needs none of them.
    git --git-dir="$LLAMA_GIT" archive HEAD $(git --git-dir="$LLAMA_GIT" ls-tree --name-only HEAD | grep -vx models) |
      tar -x -C "$LLAMA_SRC"
    git --git-dir="$LLAMA_GIT" rev-parse HEAD > "$LLAMA_SRC/COMMIT"
  fi
  # GGML_NATIVE=OFF + AVX2/FMA/F16C: the same instruction set kvaudit is built for (x86-64-v3).
  cmake -S "$LLAMA_SRC" -B "$LLAMA_SRC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF -DGGML_OPENMP=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$LLAMA_SRC/build" --target llama-bench llama-batched-bench -j"${JOBS:-2}"
fi
[[ ${1:-} == --build-only ]] && exit 0

# Both sides under the same OpenMP wait policy (passive: on a shared machine spinning threads steal
# the cores the other processes need, and both use OpenMP here).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "date: $(date -u +%FT%TZ)  host: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "llama.cpp: $(cat "$LLAMA_SRC/COMMIT" 2>/dev/null || echo unknown)  kvaudit: $(git rev-parse --short HEAD)"
echo "model: $MODEL  threads: $THREADS  prompt: $PROMPT  gen: $GEN"
for r in $(seq "${ROUNDS:-1}"); do
  echo "== round $r, load before llama.cpp: $(load)"
  # -p: prefill of PROMPT tokens; -n: GEN decode steps at batch 1; pp/tg rows in tokens/s.
  "$BENCH" -m "$MODEL" -t "$THREADS" -p "$PROMPT" -n "$GEN" -r "$REPEAT" -o md 2>/dev/null | grep -E '^\|'
  # Batch-32 decode: 32 parallel sequences decoding GEN tokens each after a PROMPT-token prompt.
  if [[ -x $LLAMA_SRC/build/bin/llama-batched-bench ]]; then
    "$LLAMA_SRC/build/bin/llama-batched-bench" -m "$MODEL" -t "$THREADS" -c $((32 * (PROMPT + GEN))) \
      -npp "$PROMPT" -ntg "$GEN" -npl 32 2>/dev/null | grep -E '^\|'
  fi
  echo "== round $r, load before kvaudit: $(load)"
  "$KVAUDIT" bench --model "$MODEL" --threads "$THREADS" --batch 1,32 --prompt-len "$PROMPT" --gen "$GEN" \
    --repeat "$REPEAT"
  echo "== round $r, load after: $(load)"
done
