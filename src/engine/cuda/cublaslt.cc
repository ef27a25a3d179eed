#include "engine/cuda/cublaslt.h"

#include <dlfcn.h>

#include <string>

#include "engine/cuda/cuda_check.h"

namespace kvaudit::engine::cuda {
namespace {

template <typename F>
void bind(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (f == nullptr) throw_runtime(std::string("cuBLASLt: the loaded library has no ") + name);
}

CublasLt load() {
  // The major version the code was compiled against (its ABI).
  const std::string soname = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr)
    throw_runtime("bf16-lt weights need " + soname + " (the CUDA toolkit's cuBLASLt) on the library path: " +
                  dlerror());
  CublasLt f{};
  bind(lib, "cublasLtCreate", f.create);
  bind(lib, "cublasLtMatmulDescCreate", f.desc_create);
  bind(lib, "cublasLtMatmulDescSetAttribute", f.desc_set);
  bind(lib, "cublasLtMatrixLayoutCreate", f.layout_create);
  bind(lib, "cublasLtMatrixLayoutSetAttribute", f.layout_set);
  bind(lib, "cublasLtMatrixLayoutDestroy", f.layout_destroy);
  bind(lib, "cublasLtMatmulPreferenceCreate", f.pref_create);
  bind(lib, "cublasLtMatmulPreferenceSetAttribute", f.pref_set);
  bind(lib, "cublasLtMatmulPreferenceDestroy", f.pref_destroy);
  bind(lib, "cublasLtMatmulAlgoGetHeuristic", f.heuristic);
  bind(lib, "cublasLtMatmulAlgoConfigGetAttribute", f.algo_config);
  bind(lib, "cublasLtMatmul", f.matmul);
  bind(lib, "cublasLtGetStatusString", f.status_string);
  return f;
}

}  // namespace

const CublasLt& cublaslt() {
  static const CublasLt f = load();
  return f;
}

void check_lt(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_runtime(std::string("cuBLASLt: ") + what + ": " + cublaslt().status_string(status));
}

}  // namespace kvaudit::engine::cuda
