#!/usr/bin/env bash
# One call on the device machine (the `run` tool): the CUDA tests, then CUDA bench numbers for
# random-weight models of real shapes, then SmolLM2 greedy generations CPU vs CUDA when its GGUF is
# at $SMOL. bf16-lt loads cuBLASLt, found on the image below. Expects the binaries built elsewhere in .carry/ (tools/cuda_carry.sh) and writes logs
# under $OUT. Usage: bash tools/cuda_device_run.sh [tests|bench|kvbench|big|b1|ab|profile|kprofile|smol|sweep]...
# `kprofile`: ncu's full report of one launch of one kernel (KPROFILE), its stall reasons and hottest
# SASS (tools/ncu_sass_summary.py), and with a -lineinfo build its source lines (tools/ncu_source_lines.py).
# `kvbench`: the Llama-3.2-1B shape under KV schemes, quantized on the device vs through the host
# caches (KVAUDIT_CUDA_KV=host), with the KV bytes each batch holds.
# `b1`: batch-1 decode A/Bs (environment switches) and, with an ablation binary, launches skipped.
# `ab`: large-batch A/Bs of several builds and environment switches in turn (ABRUNS).
# (default: all). `profile`: GPU time per kernel over about one batch-1 decode step (ncu).
set -u -o pipefail
C=${CARRY:-.carry}
export LD_LIBRARY_PATH=$PWD/$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
OUT=${OUT:-/tmp/out}
SMOL=${SMOL:-/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf}
mkdir -p "$OUT"
[ -d "$C/lib" ] || tar -C "$C" -xJf "$C/bin.tar.xz"
# bf16-lt loads cuBLASLt at run time: the image's toolkit or the one PyTorch's wheels carry.
if ! ldconfig -p | grep -q 'libcublasLt.so.13 '; then
  lt=$(find /usr/local/cuda*/ /usr/lib /usr/local/lib/python3* /opt -name 'libcublasLt.so.13' 2>/dev/null | head -1)
  [ -n "$lt" ] && export LD_LIBRARY_PATH=$(dirname "$lt"):$LD_LIBRARY_PATH
  echo "cuBLASLt: ${lt:-not found}"
fi
steps=${*:-tests bench profile smol sweep}
# The issue's mixed sweep: 16-bit and six schemes sharing each batch, round-robin (`big`, `ab`).
MIX=(--kv-mix fp16 int8:token:asym int4:token:asym kivi2 kivi4 q8_0 fp8e5m2)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for step in $steps; do
  case $step in
    tests)
      "$C/kvaudit_cuda_tests" --gtest_brief=1 2>&1 | tee "$OUT/cuda_tests.log" | tail -40
      ;;
    bench)
      for cfg in smollm2-135m llama-1b; do
        for w in fp32 bf16 bf16-tc bf16-lt; do
          echo "== bench $cfg weights $w"
          KVAUDIT_CUDA_WEIGHTS=$w timeout 240 "$C/kvaudit" bench --model "tools/cuda_configs/$cfg" --random-weights \
            --device cuda --batch 1,32 --prompt-len 128 --gen 32 --repeat 3 2>&1 | tee -a "$OUT/bench.log" | tail -4
        done
      done
      echo "== bench smollm2-135m cpu (16 cores)"
      timeout 200 "$C/kvaudit" bench --model tools/cuda_configs/smollm2-135m --random-weights --device cpu \
        --batch 1,32 --prompt-len 128 --gen 32 --repeat 1 2>&1 | tee -a "$OUT/bench.log" | tail -4
      ;;
    kvbench)  # KVBENCH="schemes" (default: all below), KVBATCH (default 1,32,256)
      for kv in ${KVBENCH:-fp16 int8:token:asym int4:token:asym int2:group:g32 int3:tensor:sym fp8e5m2 kivi2 q4_0}; do
        for where in device host; do
          echo "== kvbench llama-1b bf16-tc kv $kv on $where"
          KVAUDIT_CUDA_KV=$where KVAUDIT_CUDA_WEIGHTS=bf16-tc timeout 240 "$C/kvaudit" bench \
            --model tools/cuda_configs/llama-1b --random-weights --device cuda --kv "$kv" --batch ${KVBATCH:-1,32,256} \
            --prompt-len 128 --gen 32 --repeat ${KVREPEAT:-2} 2>&1 | tee -a "$OUT/kvbench.log" | tail -4
          [ -n "${KVDEVICE_ONLY:-}" ] && break
        done
      done
      ;;
    big)  # issue 10 must-show 3: BIGCFG shapes (default the 8B and 7B), BIGW weights (default bf16-lt,
      # space-separated for several): batch 1 on fp16
      # (its bandwidth-bound ratio) and batches of 16-bit + 6 schemes round-robin, beside transformers
      # (bf16, plain and with the research code's int4 k/v hooks) in the same call.
      for cfg in ${BIGCFG:-llama-3.1-8b qwen2.5-7b}; do
        for w in ${BIGW:-bf16-lt}; do
         for g in ${BIGGRAPHS:-1}; do  # BIGGRAPHS="0 1": decode steps eager, then as CUDA graphs
          echo "== big $cfg kvaudit $w graphs=$g"
          KVAUDIT_CUDA_GRAPHS=$g KVAUDIT_CUDA_WEIGHTS=$w /usr/bin/time -f "kvaudit bench: %e s wall" timeout 400 "$C/kvaudit" bench \
            --model "tools/cuda_configs/$cfg" --random-weights --device cuda --batch "${BIGBATCH:-1,64,256}" \
            --prompt-len 96 --gen "${BIGGEN:-256}" --repeat 1 \
            "${MIX[@]}" 2>&1 | tee -a "$OUT/big.log" | tail -8
         done
        done
        [ "${BIGPEER:-1}" = 0 ] && continue  # BIGPEER=0: kvaudit only
        echo "== big $cfg transformers"
        timeout 400 python3 tools/bench_transformers.py --config "tools/cuda_configs/$cfg" --batch "${BIGBATCH:-1,64,256}" \
          --prompt-len 96 --gen "${BIGGEN:-256}" 2>&1 | tee -a "$OUT/big.log" | grep -v Warning | tail -5
        timeout 300 python3 tools/bench_transformers.py --config "tools/cuda_configs/$cfg" --batch "${BIGHOOKBATCH:-256}" \
          --prompt-len 96 --gen "${BIGGEN:-256}" --int4-hooks 2>&1 | tee -a "$OUT/big.log" | grep -v Warning | tail -3
      done
      ;;
    b1)  # Batch-1 decode A/Bs in one call: B1CFG configs (default the 8B with 8 layers, then the 8B),
      # B1VARS variants, each a comma-separated list of environment settings ("-": none), run in turn;
      # with $C/kvaudit_ablate (ABLATE_BIN of tools/cuda_carry.sh, built from the cuda-ablate branch)
      # also B1ABLATE's launch sets skipped, one run each (KVAUDIT_CUDA_ABLATE: the step without them).
      # Any second build (main's, against a branch's) goes the same way: ABLATE_BIN=it, B1ABLATE=none
      # runs it once per config after the variants (a binary without the ablation switch ignores it).
      for cfg in ${B1CFG:-llama-3.1-8b-l8 llama-3.1-8b}; do
        for v in ${B1VARS:-- KVAUDIT_CUDA_PDL=0,KVAUDIT_CUDA_QKV_ROPE=0 KVAUDIT_CUDA_PDL=0 KVAUDIT_CUDA_QKV_ROPE=0 -}; do
          echo "== b1 $cfg $v"
          env $([ "$v" = - ] || echo "$v" | tr , ' ') KVAUDIT_CUDA_WEIGHTS=bf16-lt timeout 150 "$C/kvaudit" bench \
            --model "tools/cuda_configs/$cfg" --random-weights --device cuda --batch 1 --prompt-len 96 --gen 128 \
            --repeat 3 2>&1 | tee -a "$OUT/b1.log" | grep -A1 "batch  prefill" | tail -1
        done
        [ -x "$C/kvaudit_ablate" ] || continue
        for a in ${B1ABLATE:-norm,attn,kvw,qkvrope,rope,split,gated prod attn kvw qkvrope norm gated}; do
          echo "== b1 $cfg without $a (kvaudit_ablate)"
          KVAUDIT_CUDA_ABLATE=$a KVAUDIT_CUDA_WEIGHTS=bf16-lt timeout 150 "$C/kvaudit_ablate" bench \
            --model "tools/cuda_configs/$cfg" --random-weights --device cuda --batch 1 --prompt-len 96 --gen 128 \
            --repeat 3 2>&1 | tee -a "$OUT/b1.log" | grep -A1 "batch  prefill" | tail -1
        done
      done
      ;;
    ab)  # Large-batch A/Bs of builds and settings in one call: ABRUNS entries "binary[,VAR=value...]"
      # (binaries in $C: kvaudit, kvaudit_ablate, EXTRA_BINS of tools/cuda_carry.sh), run in turn
      # ABROUNDS times (default 2), each a bench of ABCFG (default the 8B with 8 layers) at ABBATCH
      # (default 256,512) with the 7-scheme mix, 96-token prompts, ABGEN new tokens (default 128).
      for round in $(seq "${ABROUNDS:-2}"); do
        for r in ${ABRUNS:-kvaudit}; do
          bin=${r%%,*} vars=$([ "$r" = "$bin" ] || echo "${r#*,}" | tr , ' ')
          echo "== ab round $round $bin ${vars:-(defaults)}"
          env $vars KVAUDIT_CUDA_WEIGHTS=bf16-lt timeout 200 "$C/$bin" bench \
            --model "tools/cuda_configs/${ABCFG:-llama-3.1-8b-l8}" --random-weights --device cuda \
            --batch "${ABBATCH:-256,512}" --prompt-len 96 --gen "${ABGEN:-128}" --repeat 1 \
            "${MIX[@]}" 2>&1 | tee -a "$OUT/ab.log" |
            grep -A"$(echo "${ABBATCH:-256,512}" | tr , '\n' | wc -l)" "batch  prefill"
        done
      done
      ;;
    profile)  # PROFILE="config batch skip count" (default: the SmolLM2 shape, batch 1); PROFILE_ARGS: more bench flags.
      # PROFILE_CALL=N: instead of skip/count, exactly the backend's N-th forward call (bench: 1 is the
      # prefill, N >= 2 decode step N - 1; KVAUDIT_CUDA_PROFILE_CALL). Weights: KVAUDIT_CUDA_WEIGHTS, else bf16-lt.
      read -r pcfg pbatch pskip pcount <<<"${PROFILE:-smollm2-135m 1 3000 400}"
      if [ -n "${PROFILE_CALL:-}" ]; then
        window=(--profile-from-start off)
      else
        window=(--launch-skip "$pskip" --launch-count "$pcount")
      fi
      KVAUDIT_CUDA_PROFILE_CALL=${PROFILE_CALL:-} KVAUDIT_CUDA_WEIGHTS=${KVAUDIT_CUDA_WEIGHTS:-bf16-lt} \
        timeout 300 ncu --clock-control none --cache-control "${NCU_CACHE:-all}" \
        --metrics gpu__time_duration.sum "${window[@]}" --csv "$C/kvaudit" bench --model "tools/cuda_configs/$pcfg" --random-weights --device cuda --batch "$pbatch" \
        --prompt-len "${PROFILE_PROMPT:-128}" --gen 8 --repeat 1 ${PROFILE_ARGS:-} >"$OUT/ncu.csv" 2>"$OUT/ncu.err" ||
        echo "ncu failed: $(tail -2 "$OUT/ncu.err")"
      python3 - "$OUT/ncu.csv" <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]
k_i, v_i = h.index("Kernel Name"), h.index("Metric Value")
t = collections.defaultdict(list)
for r in rows[1:]:
    try:
        t[r[k_i].split("(")[0][-40:]].append(float(r[v_i].replace(",", "")) / 1e3)
    except ValueError:
        pass
for k, v in sorted(t.items(), key=lambda kv: -sum(kv[1])):
    print(f"{sum(v):9.1f} us {len(v):4d} launches {sum(v) / len(v):7.2f} us each  {k}")
print(f"total {sum(map(sum, t.values())):.1f} us over {sum(map(len, t.values()))} launches")
PY
      ;;
    kprofile)  # KPROFILE="config batch prompt kernel skip": ncu's full report for one launch of one kernel
      read -r kcfg kbatch kprompt kname kskip <<<"${KPROFILE:-llama-3.1-8b 256 224 attention_kernel 520}"
      KVAUDIT_CUDA_WEIGHTS=${KVAUDIT_CUDA_WEIGHTS:-bf16-lt} timeout 400 ncu --kernel-name "regex:$kname" \
        --launch-skip "$kskip" --launch-count 1 --set full \
        -o "$OUT/kprofile" -f "$C/kvaudit" bench --model "tools/cuda_configs/$kcfg" --random-weights --device cuda \
        --batch "$kbatch" --prompt-len "$kprompt" --gen 4 --repeat 1 ${PROFILE_ARGS:-} >"$OUT/kprofile.err" 2>&1 ||
        echo "ncu failed: $(tail -2 "$OUT/kprofile.err")"
      # No report when the skip passes the kernel's last launch (or the name matches none).
      if [ ! -s "$OUT/kprofile.ncu-rep" ]; then
        echo "kprofile: no launch of '$kname' after skipping $kskip: $(grep -m1 'No kernels' "$OUT/kprofile.err")"
        continue
      fi
      ncu -i "$OUT/kprofile.ncu-rep" --page details >"$OUT/kprofile.txt" 2>&1
      ncu -i "$OUT/kprofile.ncu-rep" --page source --csv --print-source sass >"$OUT/kprofile_sass.csv" 2>&1
      rm -f "$OUT/kprofile.ncu-rep"
      grep -E "Duration|Throughput|Occupancy|Registers|Block Limit|Eligible|Issued Ipc|Spilling" "$OUT/kprofile.txt" | head -30
      python3 tools/ncu_sass_summary.py "$OUT/kprofile_sass.csv"
      # Per source line, where the binary carries a line table (-DCMAKE_CUDA_FLAGS=-lineinfo): its
      # cubins disassembled with their lines, joined with the SASS page.
      dis=$(mktemp -d) bin=$(cd "$C" && pwd)/kvaudit
      (cd "$dis" && cuobjdump -xelf all "$bin" >/dev/null) &&
        for f in "$dis"/*.cubin; do nvdisasm --print-line-info -c "$f"; done >"$dis/lines.txt" &&
        python3 tools/ncu_source_lines.py "$OUT/kprofile_sass.csv" "$dis/lines.txt" 60 | tee "$OUT/kprofile_lines.txt"
      rm -rf "$dis"
      gzip -f "$OUT/kprofile_sass.csv"
      ;;
    smol)
      [ -f "$SMOL" ] || { echo "no $SMOL: SmolLM2 step skipped"; continue; }
      for dev in cpu cuda; do
        echo "== smollm2 generate $dev"
        /usr/bin/time -f "%e s wall" "$C/kvaudit" generate --model "$SMOL" --prompts "$C/prompts.txt" \
          --max-new-tokens 64 --batch-size 32 --device $dev >"$OUT/smol_$dev.jsonl" 2>"$OUT/smol_$dev.err"
        tail -1 "$OUT/smol_$dev.err"
        [ "${SMOLBENCH:-1}" = 0 ] && continue  # SMOLBENCH=0: the generations only
        echo "== smollm2 bench $dev"
        timeout 200 "$C/kvaudit" bench --model "$SMOL" --device $dev --batch 1,32 --prompt-len 128 --gen 32 \
          --repeat $([ $dev = cuda ] && echo 3 || echo 1) 2>&1 | tee -a "$OUT/bench_smol.log" | tail -3
      done
      python3 - "$OUT/smol_cpu.jsonl" "$OUT/smol_cuda.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
same = sum(x["response"] == y["response"] for x, y in zip(a, b))
print(f"smollm2 greedy: {same} of {len(a)} prompts identical CPU vs CUDA ({len(b)} cuda lines)")
for x, y in zip(a, b):
    if x["response"] != y["response"]:
        print("differs:", x["id"], repr(x["response"][:80]), "|", repr(y["response"][:80]))
PY
      ;;
    sweep)  # scripts/demo.sh's audit step on both devices: same table, and the wall-time ratio
      [ -f "$SMOL" ] || { echo "no $SMOL: sweep step skipped"; continue; }
      for dev in cpu cuda; do
        rm -rf "/tmp/sweep_$dev"
        /usr/bin/time -f "sweep $dev: %e s wall" "$C/kvaudit" sweep --model "$SMOL" --device $dev --data "$C/datasets" \
          --scheme int:token:asym --bits 16,8,6,5,4,3,2 --bench custom,advbench,xstest --limit 24 --seed 1 \
          --max-new-tokens 32 --batch-size 56 --out "/tmp/sweep_$dev" >"$OUT/sweep_$dev.txt" 2>"$OUT/sweep_$dev.err"
        tail -1 "$OUT/sweep_$dev.err"
      done
      if diff "$OUT/sweep_cpu.txt" "$OUT/sweep_cuda.txt" >"$OUT/sweep_diff.txt"; then
        echo "sweep tables identical CPU vs CUDA"
      else
        echo "sweep tables differ:"; head -20 "$OUT/sweep_diff.txt"
      fi
      tail -25 "$OUT/sweep_cuda.txt"
      ;;
  esac
done
