#!/usr/bin/env python3
"""Builds tests/fixtures/io/dequant_reference.gguf: reference dequantizations from gguf-py, an
implementation independent of kvaudit's (tests/io/ggml_dequant_test.cc compares against it).

Command:   python3 tools/make_io_fixtures.py            (from the repository root)
Versions:  gguf-py 0.19.0 (pip install gguf==0.19.0), numpy 2.4.6, Python 3.11.7

For every type the file holds two tensors of kRows rows x kRowLen elements:
  "<TYPE>.raw"      the encoded bytes, stored with that ggml type
  "<TYPE>.expected" F32, gguf.quants.dequantize of the same bytes
Rows 0..kQuantRows-1 encode seeded N(0, 1) data (quantized by gguf-py where it can quantize; the
K-quants, which gguf-py only dequantizes, and the second half of the rows of every block type use
random block bytes with valid fp16 scales, so every code pattern appears). The file is written by
gguf-py's own GGUFWriter, so reading it also checks kvaudit's GGUF reader against an independent
writer; a few metadata keys of each value type are added for that purpose.
"""
import os
import sys

from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

kRows = 6
kQuantRows = 3
kRowLen = 256
kSeed = 20261122
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io",
                   "dequant_reference.gguf")

# Byte offsets of the fp16 scale fields inside one block (facts of the ggml formats).
FP16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
CAN_QUANTIZE = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}


def random_blocks(rng, qtype, n_rows):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = n_rows * kRowLen // block_size
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in FP16_FIELDS[qtype]:
        scale = (rng.uniform(1e-3, 0.1, size=n_blocks) * rng.choice([-1.0, 1.0], size=n_blocks)).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(n_rows, -1)


def encode(rng, qtype):
    data = rng.standard_normal((kRows, kRowLen)).astype(np.float32)
    if qtype == T.F32:
        return data.view(np.uint8)
    if qtype == T.F16:
        return data.astype(np.float16).view(np.uint8)
    if qtype == T.BF16:
        return quants.quantize(data, T.BF16).view(np.uint8)
    rand = random_blocks(rng, qtype, kRows)
    if qtype in CAN_QUANTIZE:
        q = quants.quantize(data[:kQuantRows], qtype)
        rand[:kQuantRows] = q
    return rand


def main():
    rng = np.random.default_rng(kSeed)
    w = gguf.GGUFWriter(OUT, "kvaudit-io-fixture")
    w.add_uint32("fixture.u32", 4000000000)
    w.add_int32("fixture.i32", -7)
    w.add_uint64("fixture.u64", 1 << 40)
    w.add_int8("fixture.i8", -128)
    w.add_float32("fixture.f32", 0.25)
    w.add_float64("fixture.f64", -1.5)
    w.add_bool("fixture.bool", True)
    w.add_string("fixture.str", "héllo")
    w.add_array("fixture.strs", ["a", "", "ĠThe"])
    w.add_array("fixture.ints", [1, -2, 3])
    types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1,
             T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
    for qtype in types:
        raw = encode(rng, qtype)
        expected = quants.dequantize(raw, qtype).astype(np.float32).reshape(kRows, kRowLen)
        assert np.all(np.isfinite(expected)), qtype.name
        if qtype == T.F32:
            w.add_tensor(f"{qtype.name}.raw", raw.view(np.float32))
        else:
            w.add_tensor(f"{qtype.name}.raw", raw, raw_shape=raw.shape, raw_dtype=qtype)
        w.add_tensor(f"{qtype.name}.expected", expected)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes) with gguf {version('gguf')}, numpy {np.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
