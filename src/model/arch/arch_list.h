// One factory per architecture (model/arch/<name>.cc), gathered by model/arch/registry.cc.
#pragma once
#include "model/arch.h"

namespace kvaudit::model::arch {

ArchSpec llama();
ArchSpec mistral();
ArchSpec qwen2();
ArchSpec qwen3();
ArchSpec phi3();
ArchSpec gemma2();
ArchSpec olmo2();

}  // namespace kvaudit::model::arch
