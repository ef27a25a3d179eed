// llama.cpp KV-cache block types (SPEC.md §3): blocks of 32 consecutive channels of one token in
// llama.cpp's row order (keys of "normal"-RoPE models: see llama_cpp_key_order), ggml's reference
// formulas (kv/ggml_block.h, shared with the CUDA engine), scales in fp16. A block shorter than 32 only occurs with +protect
// (the remaining channels of the row); the formulas apply to it unchanged.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "kv/cache.h"
#include "kv/ggml_block.h"
#include "kv/row_quantizer.h"
#include "kv/spec.h"

namespace kvaudit::kv {

// The ggml type of a llama.cpp KV scheme (q8_0 ... iq4_nl).
io::GgmlType ggml_type(SchemeKind kind);

// One block's codes and its fp16 parameters (d; m for q4_1/q5_1).
struct GgmlBlock {
  std::array<uint8_t, kGgmlBlock> codes{};  // q8_0: int8 two's complement; others: unsigned code
  float d = 0;  // fp16-exact
  float m = 0;  // fp16-exact (q4_1, q5_1)
};

// The reference quantization of n <= 32 values (kv/ggml_block.h ggml_quantize_ref).
GgmlBlock ggml_quantize_block(SchemeKind kind, const float* x, int n);
float ggml_dequantize(SchemeKind kind, uint8_t code, float d, float m);
// The block in ggml's byte layout (io::encode_legacy_block; n must be 32). Returns the byte count.
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
