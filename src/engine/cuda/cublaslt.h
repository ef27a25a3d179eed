// cuBLASLt, loaded when the first kBf16Lt product runs (dlopen), so that kvaudit and its tests start
// without the 0.5 GB library and a machine without it fails with a message naming it only when
// bf16-lt weights are asked for. The functions are the library's own (cublasLt.h).
#pragma once
#include <cublasLt.h>

namespace kvaudit::engine::cuda {

struct CublasLt {
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtMatmulDescCreate) desc_create;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set;
  decltype(&cublasLtMatrixLayoutCreate) layout_create;
  decltype(&cublasLtMatrixLayoutSetAttribute) layout_set;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmulAlgoConfigGetAttribute) algo_config;
  decltype(&cublasLtMatmul) matmul;
  decltype(&cublasLtGetStatusString) status_string;
};

// The library's functions, loaded once; throws std::runtime_error naming the library when it is
// missing.
const CublasLt& cublaslt();

// Throws std::runtime_error "cuBLASLt: <what>: <status>" unless status is CUBLAS_STATUS_SUCCESS.
void check_lt(cublasStatus_t status, const char* what);

}  // namespace kvaudit::engine::cuda
