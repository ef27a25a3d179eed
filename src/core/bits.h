// Bit casts and the host/device marker shared by the formulas that run on both sides (core/half.h,
// kv/layout.h, kv/ggml_block.h): plain inline code a CUDA kernel can call, no intrinsics on the host.
#pragma once
#include <cstdint>

#include <bit>

#if defined(__CUDACC__)
#define KVAUDIT_HD __host__ __device__
#else
#define KVAUDIT_HD
#endif

namespace kvaudit {

KVAUDIT_HD inline uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<uint32_t>(x);
#endif
}
KVAUDIT_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return std::bit_cast<float>(u);
#endif
}

}  // namespace kvaudit
