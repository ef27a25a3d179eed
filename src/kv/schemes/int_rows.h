// intB with a per-token granularity (SPEC.md §3): `token` (one set = the row), `head` (one set per KV
// head), `group:gN` (N consecutive channels), and `tensor` (parameters fixed for the sequence).
#pragma once
#include <memory>
#include <vector>

#include "kv/row_quantizer.h"
#include "kv/schemes/int_affine.h"

namespace kvaudit::kv {

// Sets are consecutive runs of the row given by their lengths (with +protect, the runs of a head or
// group that remain after the protected channels are removed).
std::unique_ptr<RowQuantizer> make_int_row_quantizer(IntAffine q, std::vector<int> set_lengths);
// `tensor`: one fixed (s, z) for every row; no per-row parameters.
std::unique_ptr<RowQuantizer> make_int_fixed_quantizer(IntAffine q, int width, AffineParams p);

}  // namespace kvaudit::kv
