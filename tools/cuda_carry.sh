#!/usr/bin/env bash
# Fills .carry/ (ignored by git) with what tools/cuda_device_run.sh needs on the device machine:
# kvaudit and the CUDA test binary from BUILD (default build-cuda), the shared libraries they need
# beyond glibc and libstdc++ (the device image is another distribution), and a prompts file of
# the first N AdvBench and XSTest prompts from ../shared/datasets, and the datasets `sweep` reads.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-cuda}
N=${N:-50}
rm -rf .carry && mkdir -p .carry/lib
cp "$BUILD/kvaudit" "$BUILD/tests/kvaudit_cuda_tests" .carry/
strip .carry/kvaudit .carry/kvaudit_cuda_tests
# ABLATE_BIN: a kvaudit built from the cuda-ablate branch (or any second build), carried as
# kvaudit_ablate (the `b1` step). EXTRA_BINS="name=path ...": more builds, carried as .carry/name
# (the `ab` step compares them).
extra=()
if [ -n "${ABLATE_BIN:-}" ]; then cp "$ABLATE_BIN" .carry/kvaudit_ablate && strip .carry/kvaudit_ablate && extra+=(kvaudit_ablate); fi
for e in ${EXTRA_BINS:-}; do
  cp "${e#*=}" ".carry/${e%%=*}" && strip ".carry/${e%%=*}" && extra+=("${e%%=*}")
done
for lib in $(ldd .carry/kvaudit .carry/kvaudit_cuda_tests | awk '/=>/ {print $3}' | sort -u); do
  case $(basename "$lib") in libc.so*|libm.so*|libstdc++*|libgcc_s*|ld-linux*) ;; *) cp -L "$lib" .carry/lib/ ;; esac
done
D=../shared/datasets
python3 - "$D" "$N" >.carry/prompts.txt <<'PY'
import csv, sys
d, n = sys.argv[1], int(sys.argv[2])
adv = [r["goal"] for r in csv.DictReader(open(f"{d}/advbench/harmful_behaviors.csv"))][: n // 2]
xs = [r["prompt"] for r in csv.DictReader(open(f"{d}/xstest/xstest_prompts.csv"))][: n - n // 2]
for p in adv + xs:
    print(p.replace("\n", " "))
PY
# What `sweep` reads (--data): the benchmarks, the judge's substrings, the chat templates.
mkdir -p .carry/datasets
for d in advbench xstest paper_custom refusal_substrings chat_templates ifeval; do cp -r "$D/$d" .carry/datasets/; done
# The repository and the carry travel together under 64 MiB: the binaries and libraries go
# compressed (ICU's data alone is 31 MB) and tools/cuda_device_run.sh unpacks them. xz -9e: its
# 64 MiB window holds several builds of one program, so each after the first costs little (three
# -lineinfo builds: 23 MB against 29 MB at the default level).
bins="kvaudit kvaudit_cuda_tests ${extra[*]}"
tar -C .carry -cf - lib $bins | xz -9e -T2 >.carry/bin.tar.xz && (cd .carry && rm -rf lib $bins)
du -sh .carry; ls .carry
tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
carry=$(du -sb .carry | cut -f1)
if [ $((tracked + carry)) -gt $((62 << 20)) ]; then
  echo "warning: tracked files ($((tracked >> 20)) MiB) and .carry ($((carry >> 20)) MiB) near the 64 MiB a device call takes" >&2
fi
