#!/usr/bin/env bash
# On the device machine (the `run` tool): SmolLM2 audits on CUDA and on the 16 host cores, same
# flags, then the verdicts compared sample by sample; then the issue-9 targets on CUDA with 200
# held-out prompts. Expects .carry/ from tools/cuda_carry.sh (plus refusal_direction_splits in
# .carry/datasets) and the model at $SMOL. Results: $OUT/audits.tgz, logs on stdout.
set -u -o pipefail
C=.carry
export LD_LIBRARY_PATH=$PWD/$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
SMOL=${SMOL:-/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf}
R=/tmp/audits
mkdir -p "$R" "$OUT"
common=(--model "$SMOL" --data "$PWD/$C/datasets" --max-new-tokens 32 --quiet)
for dev in cuda cpu; do
  echo "== demo audit on $dev"
  /usr/bin/time -f "$dev %e s wall" timeout 200 "$C/kvaudit" audit "${common[@]}" --kv int3:tensor:sym --calib custom \
    --heldout advbench:60 --force --device $dev --out "$R/demo_$dev" | tail -3
done
python3 - "$R" <<'PY'
import json, sys
r = sys.argv[1]
def load(d):
    out = {}
    for line in open(f"{r}/{d}/samples.jsonl"):
        s = json.loads(line); out[(s["id"], s["scheme"])] = s["refused"]
    return out
a, b = load("demo_cuda"), load("demo_cpu")
common = set(a) & set(b)
same = sum(a[k] == b[k] for k in common)
print(f"verdicts CPU vs CUDA: {same}/{len(common)} equal ({len(a)} cuda, {len(b)} cpu samples)")
ra, rb = (json.load(open(f"{r}/{d}/report.json")) for d in ("demo_cuda", "demo_cpu"))
for k in ("failure_mode", "chosen", "pcr_calibration", "critical_layers"):
    print(k, "cuda:", ra.get(k), "cpu:", rb.get(k))
print("timing cuda", ra["timing"]["total"], "cpu", rb["timing"]["total"])
PY
for kv in int3:tensor:sym int2:token:asym kivi2 fp8e5m2; do
  echo "== audit $kv (advbench:200, cuda)"
  /usr/bin/time -f "%e s wall" timeout 150 "$C/kvaudit" audit "${common[@]}" --kv "$kv" --heldout advbench:200 \
    --device cuda --out "$R/smollm2_${kv//:/_}" | tail -3
done
tar -C "$R" -czf "$OUT/audits.tgz" .
ls -la "$OUT"
