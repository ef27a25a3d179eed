#!/usr/bin/env bash
# The issue-9 audits on the device machine (the `run` tool), in steps of one call each:
#   piece PATH..   copy what came in `carry` to /tmp/k (the binaries, datasets, model pieces: a model
#                  is larger than one call); the first call also starts the CUDA tests there
#   launch         join the pieces into the GGUFs (sha256-checked), start every audit in its own
#                  process session (they outlive the call; the machine stays warm between calls)
#   poll           progress of every audit
#   collect        $OUT/audits.tgz with every finished audit folder and the logs
#   ifeval         join the pieces, start the IFEval evals of issue 11 (every model in PIECES.txt, 16-bit
#                  and int8:token:asym, int4:token:asym, kivi2, fp8e5m2 on the GPU; LIMIT=N: a --seed 0
#                  subset of N prompts, else all 541)
# Expects .carry/ from tools/cuda_carry.sh (kvaudit, libs, datasets), the pieces p00, p01, ... of the
# models' concatenation and PIECES.txt: "<name> <bytes> <sha256>" per model, in that order.
set -u -o pipefail
K=/tmp/k
R=/tmp/audits
export LD_LIBRARY_PATH=$K/lib
mkdir -p "$K" "$R"
step=$1
shift
join_pieces() {  # p00, p01, ... -> the models of PIECES.txt, sha256-checked
  [ -f "$K/p00" ] || return 0
  local off=0
  cat "$K"/p?? >"$K/all"
  while read -r name bytes sum; do
    tail -c +$((off + 1)) "$K/all" | head -c "$bytes" >"$K/$name"
    echo "$sum  $K/$name" | sha256sum -c - || return 1
    off=$((off + bytes))
  done <"$K/PIECES.txt"
  rm -f "$K/all" "$K"/p??
}
case $step in
  piece)
    for f in "$@"; do cp -r "$f" "$K/"; done
    if [ -f "$K/bin.tar.xz" ]; then tar -C "$K" -xJf "$K/bin.tar.xz" && rm "$K/bin.tar.xz"; fi
    if [ -x "$K/kvaudit_cuda_tests" ] && [ ! -f "$R/cuda_tests.log" ]; then
      LD_LIBRARY_PATH=$K/lib setsid nohup "$K/kvaudit_cuda_tests" --gtest_brief=1 >"$R/cuda_tests.log" 2>&1 </dev/null &
    fi
    ls "$K" | wc -l
    ;;
  stop)  # every kvaudit started here
    pkill -f "$K/kvaudit" || true
    ;;
  ifeval)  # [NAME.gguf ...]: those models, already joined; none: join the pieces, every model of PIECES.txt
    if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$K/IFEVAL.txt"; else join_pieces || exit 1; cp "$K/PIECES.txt" "$K/IFEVAL.txt"; fi
    while read -r name rest; do
      m=${name%.gguf}
      setsid nohup /usr/bin/time -f "%e s wall" "$K/kvaudit" eval --model "$K/$name" --bench ifeval --data "$K/datasets" \
        --kv int8:token:asym --kv int4:token:asym --kv kivi2 --kv fp8e5m2 --device cuda --batch-size ${BATCH:-64} \
        --limit ${LIMIT:-0} --threads ${THREADS:-8} --quiet --out "$R/ifeval${LIMIT:-}_$m" >"$R/ifeval${LIMIT:-}_$m.log" 2>&1 </dev/null &
    done <"$K/IFEVAL.txt"
    sleep 30
    tail -n 3 "$R"/ifeval*.log
    ;;
  launch)
    tail -n 5 "$R/cuda_tests.log"
    join_pieces || exit 1
    nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader
    common=(--data "$K/datasets" --text "$K/datasets/wikitext2_test/wikitext2_test.txt" --ppl-windows 2
            --device cuda --batch-size 64 --threads 2 --quiet)
    start() {  # name, then kvaudit arguments
      local name=$1
      shift
      setsid nohup /usr/bin/time -f "%e s wall" "$K/kvaudit" "$@" >"$R/$name.log" 2>&1 </dev/null &
    }
    q=$K/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf
    s=$K/SmolLM2-135M-Instruct.Q4_1.gguf
    for kv in int3:tensor:sym int2:token:asym kivi2 fp8e5m2; do
      start "qwen2.5-coder-1.5b_${kv//:/-}" audit --model "$q" --kv "$kv" --heldout advbench:100 --max-new-tokens 64 \
        "${common[@]}" --out "$R/qwen2.5-coder-1.5b_${kv//:/-}"
      start "smollm2-135m_${kv//:/-}" audit --model "$s" --kv "$kv" --heldout advbench:400 --max-new-tokens 64 \
        "${common[@]}" --out "$R/smollm2-135m_${kv//:/-}"
    done
    # The README's demo on the GPU and on the 16 host cores: the same verdicts?
    for dev in cuda cpu; do
      setsid nohup /usr/bin/time -f "%e s wall" "$K/kvaudit" audit --model "$s" --kv int3:tensor:sym --calib custom \
        --heldout advbench:60 --max-new-tokens 32 --force --data "$K/datasets" --device $dev --threads 4 --quiet \
        --out "$R/demo_$dev" >"$R/demo_$dev.log" 2>&1 </dev/null &
    done
    sleep 20
    tail -n 3 "$R"/*.log
    ;;
  poll)
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    for d in "$R"/*/; do
      n=$(basename "$d")
      printf '%-40s samples %6s  report %s\n' "$n" "$(cat "$d/samples.jsonl" 2>/dev/null | wc -l)" \
        "$( ([ -f "$d/report.json" ] || [ -f "$d/results.json" ]) && echo done || echo -)"
    done
    grep -l "s wall" "$R"/*.log | xargs -r -n1 sh -c 'echo "$0: $(tail -n 4 "$0" | tr "\n" " ")"'
    ;;
  collect)
    python3 - "$R" <<'PY'
import json, os, sys
r = sys.argv[1]
def load(d):
    out = {}
    for line in open(f"{r}/{d}/samples.jsonl"):
        s = json.loads(line); out[(s["id"], s["scheme"])] = s["refused"]
    return out
if all(os.path.exists(f"{r}/demo_{d}/report.json") for d in ("cuda", "cpu")):
    a, b = load("demo_cuda"), load("demo_cpu")
    common = set(a) & set(b)
    same = sum(a[k] == b[k] for k in common)
    print(f"demo verdicts CPU vs CUDA: {same}/{len(common)} equal ({len(a)} cuda, {len(b)} cpu samples)")
    ra, rb = (json.load(open(f"{r}/demo_{d}/report.json")) for d in ("cuda", "cpu"))
    for k in ("failure_mode", "chosen", "pcr_calibration", "critical_layers"):
        print(k, "cuda:", ra.get(k), "cpu:", rb.get(k))
    print("timing cuda", ra["timing"], "\ntiming cpu", rb["timing"])
for d in sorted(os.listdir(r)):
    p = f"{r}/{d}/report.json"
    if os.path.exists(p):
        j = json.load(open(p))
        print(d, "|", j.get("finding", "")[:300], "| timing", j["timing"].get("total"))
PY
    tar -C "$R" -czf "$OUT/audits.tgz" .
    ls -la "$OUT"
    ;;
esac
