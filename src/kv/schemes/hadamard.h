// `+had` (SPEC.md §3): an orthonormal Hadamard rotation over each head's D channels before
// quantization and its inverse after (QuaRot; llama.cpp's attention rotation). The Sylvester matrix
// H_D / sqrt(D) is symmetric and orthonormal, so the same transform is its own inverse.
#pragma once
#include <cstdint>

namespace kvaudit::kv {

bool is_power_of_two(int n);
// row: [n_heads * head_dim], rotated in place per head; head_dim must be a power of two.
void hadamard_rows(float* row, int n_heads, int head_dim);

}  // namespace kvaudit::kv
