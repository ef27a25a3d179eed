// llama.cpp KV-cache block types (SPEC.md §3): blocks of 32 consecutive channels of one token in
// llama.cpp's row order (keys of "normal"-RoPE models: see llama_cpp_key_order), ggml's reference
// formulas, scales in fp16. A block shorter than 32 only occurs with +protect
// (the remaining channels of the row); the formulas apply to it unchanged.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "kv/cache.h"
#include "kv/row_quantizer.h"
#include "kv/spec.h"

namespace kvaudit::kv {

inline constexpr int kGgmlBlock = 32;
// ggml's iq4_nl non-uniform table (kvalues_iq4nl).
inline constexpr std::array<int8_t, 16> kIq4NlValues = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                         1,    13,   25,  38,  53,  69,  89,  113};

// One block's codes and its fp16 parameters (d; m for q4_1/q5_1).
struct GgmlBlock {
  std::array<uint8_t, kGgmlBlock> codes{};  // q8_0: int8 two's complement; others: unsigned code
  float d = 0;  // fp16-exact
  float m = 0;  // fp16-exact (q4_1, q5_1)
};

// Reference quantization of n <= 32 values, as ggml's quantize_row_*_ref reads:
//   q8_0: d = amax/127, q = roundf(x·(1/d))  (round half away from zero);
//   q4_0: d = m/-8 (m = the signed value of largest |x|, first wins), q = min(15, (int8)(x·(1/d) + 8.5));
//   q5_0: d = m/-16, q = min(31, (int8)(x·(1/d) + 16.5));
//   q4_1: d = (max-min)/15, q = min(15, (int8)((x-min)·(1/d) + 0.5)), m = min;
//   q5_1: d = (max-min)/31, q = (uint8)((x-min)·(1/d) + 0.5);
//   iq4_nl: d0 = m/-127, q = nearest table entry to x/d0 (ties up), then d = Σw·v·x / Σw·v² with
//           w = x² (the single-pass search llama.cpp's CUDA KV copy uses).
GgmlBlock ggml_quantize_block(SchemeKind kind, const float* x, int n);
// x' from a code: q8_0 q·d; q4_0 (q-8)·d; q5_0 (q-16)·d; q4_1/q5_1 q·d + m; iq4_nl table[q]·d.
float ggml_dequantize(SchemeKind kind, uint8_t code, float d, float m);
// The block in ggml's byte layout (block_q8_0 ... block_iq4_nl; n must be 32): fp16 d [, fp16 m]
// [, uint32 qh], then codes (4-bit: byte j = code[j] | code[j+16] << 4). Returns the byte count.
int ggml_block_bytes(SchemeKind kind, const GgmlBlock& b, uint8_t* out);
int ggml_code_bits(SchemeKind kind);
// The simulated cache's row: ggml_dequantize(ggml_quantize_block(...)) per block of 32 channels of x
// [width] -> out [width]. q8_0 and q4_0 full blocks take a vectorised path, bit-identical to the
// reference above (tests/kv/llama_cpp_test.cc); other types and short blocks run the reference.
void ggml_quantize_dequantize_row(SchemeKind kind, const float* x, int width, float* out);

// llama.cpp's channel order of a key row: order[p] = the channel (HF order, as the engine's rows
// hold it) at position p of llama.cpp's row. Identity unless g.llama_cpp_pairs_adjacent; then,
// per head of D channels, position p holds channel (p % 2)·D/2 + p/2: llama.cpp's converter
// permutes the Q/K rows of a head with reshape(2, D/2).swapaxes, so its rows 2i and 2i+1 are HF
// rows i and D/2 + i (model/gguf_model.cc undoes it). Block 0 of a head of 64 then holds HF
// channels 0-15 and 32-47. Throws for an odd head_dim with the flag set.
std::vector<int> llama_cpp_key_order(CacheGeometry g);

// order: empty (blocks of consecutive channels) or a permutation of [0, width) (order[p] = the
// channel at position p): blocks are then formed over x[order[0..31]], x[order[32..63]], ...;
// codes[p] holds the code of channel order[p] (the packed bytes follow llama.cpp's layout) and
// dequantize scatters each value back to its channel.
std::unique_ptr<RowQuantizer> make_ggml_quantizer(SchemeKind kind, int width, std::vector<int> order = {});

}  // namespace kvaudit::kv
