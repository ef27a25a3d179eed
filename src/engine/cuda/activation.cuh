// The gated MLP's activation on the device, one definition for every kernel that applies it (the
// element-wise pass and the gate/up product that applies it to its own tiles), so both give the
// same bits.
#pragma once

namespace kvaudit::engine::cuda {

// silu(x) = x / (1 + e^-x) (torch.nn.functional.silu); gelu_tanh as cpu::gelu_tanh.
__device__ inline float act_value(bool silu, float g) {
  if (silu) return __fdiv_rn(g, __fadd_rn(1.0f, expf(-g)));
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
}

}  // namespace kvaudit::engine::cuda
