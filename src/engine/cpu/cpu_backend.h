// The CPU backend (cpu/forward.cc): the reference implementation of the forward pass.
#pragma once
#include <memory>

#include "engine/engine.h"

namespace kvaudit::engine {

std::unique_ptr<Backend> make_cpu_backend(const model::Model& model, const BackendOptions& opt);

}  // namespace kvaudit::engine
