#!/usr/bin/env python3
"""tools/timeline_report.py on a made-up record file: launches grouped by block index, a wait that
comes after the next launch of its kernel started (PDL) given to the launch it belongs to, steps
cut at the argmax's merge, chain and residency times, phase marks timed from their block's wait."""
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMS, EVENT = 256, struct.Struct("<QIIII")
SOURCE = """__global__ void argmax_merge_kernel(int x) {
  pdl_trigger();
  pdl_wait();
}
__global__ void __launch_bounds__(32) prod_kernel(int x) {
  pdl_trigger();
  pdl_wait();
}
template <int N>
__global__ void norm_kernel(int x) {
  pdl_trigger();
  pdl_wait();
}
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src/engine/cuda"
        src.mkdir(parents=True)
        (src / "fake.cu").write_text(SOURCE)
        rings = {0: [], 1: []}
        for s in range(4):
            t = 100_000 * s
            # sites are file 0's lines of SOURCE; prod: 3 blocks on two SMs, starting 0.0, 0.1, 0.2 us in; their waits return at 1.0 us
            for b in range(3):
                rings[b % 2].append((t + 100 * b, 6, b, 3, 0 | (b % 2) << 8))
                rings[b % 2].append((t + 1000 + 10 * b, 7, b, 3, 1 | (b % 2) << 8))
                # a phase mark (line 8) 0.5 us after each block's own wait; written late, at the block's end
                rings[b % 2].append((t + 1500 + 10 * b, 8, b, 3, 2 | (b % 2) << 8))
                # and one (line 6) 0.6 us before it: a block's work ahead of its PDL wait
                rings[b % 2].append((t + 400 + 10 * b, 6, b, 3, 2 | (b % 2) << 8))
            # two launches of norm_kernel in a row: the second starts before the first's wait returns
            rings[0] += [(t + 2000, 11, 0, 1, 0), (t + 2100, 11, 0, 1, 0),
                         (t + 2500, 12, 0, 1, 1), (t + 2600, 12, 0, 1, 1)]
            rings[1] += [(t + 2700, 2, 0, 1, 0 | 1 << 8), (t + 4000, 3, 0, 1, 1 | 1 << 8)]
        per_sm = 64
        header = [len(rings[0]), len(rings[1])] + [0] * (SMS - 2)
        body = bytearray(2 * per_sm * EVENT.size)
        for sm in (0, 1):
            rings[sm].sort()
            for i, e in enumerate(rings[sm]):
                EVENT.pack_into(body, (sm * per_sm + i) * EVENT.size, *e)
        f = Path(tmp) / "tl.bin"
        f.write_bytes(b"KVTL1 1\n/elsewhere/src/engine/cuda/fake.cu\n" + struct.pack(f"<{SMS}Q", *header)
                      + struct.pack("<Q", per_sm) + bytes(body))
        out = subprocess.run([sys.executable, str(REPO / "tools/timeline_report.py"), str(f), "--steps", "3"],
                             cwd=tmp, capture_output=True, text=True, check=True).stdout
    print(out)
    lines = [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]
    assert "3 steps of 4 launches" in out, out
    names = [r[1] for r in lines]
    assert names == ["prod_kernel", "norm_kernel", "norm_kernel", "argmax_merge_kernel"], names
    # columns: #, kernel, grid, start, resid, wait, chain, held, wspread
    prod, norm1, norm2, merge = lines
    assert prod[3:9] == ["0.0", "0.2", "1.0", "1.5", "1.0", "0.0"], prod  # chain: 2.5 - 1.0
    assert norm1[5:8] == ["2.5", "0.1", "0.5"], norm1  # its own wait, not the second launch's
    assert norm2[5:8] == ["2.6", "1.4", "0.5"], norm2
    assert merge[5] == "4.0", merge
    assert "prod_kernel: line 6 -0.60  line 8 0.50" in out, out  # marks timed from their own block's wait
    print("ok")


if __name__ == "__main__":
    main()
