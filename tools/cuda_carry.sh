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
# ABLATE_BIN: a kvaudit built from the cuda-ablate branch, carried as kvaudit_ablate (the `b1` step).
if [ -n "${ABLATE_BIN:-}" ]; then cp "$ABLATE_BIN" .carry/kvaudit_ablate && strip .carry/kvaudit_ablate; fi
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
# compressed (ICU's data alone is 31 MB) and tools/cuda_device_run.sh unpacks them.
bins="kvaudit kvaudit_cuda_tests"; [ -f .carry/kvaudit_ablate ] && bins+=" kvaudit_ablate"
tar -C .carry -cJf .carry/bin.tar.xz lib $bins && (cd .carry && rm -rf lib $bins)
du -sh .carry; ls .carry
