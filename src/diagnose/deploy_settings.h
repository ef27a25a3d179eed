// Where a plan is expressible in a server's own flags (SPEC.md §5 audit): vLLM `--kv-cache-dtype`
// (one dtype for K and V of every layer) and llama.cpp `-ctk/-ctv` (one type per role for every
// layer); otherwise why not.
#pragma once
#include <optional>
#include <string>

#include "kv/policy.h"

namespace kvaudit::diagnose {

struct DeploySettings {
  std::optional<std::string> vllm;       // e.g. "--kv-cache-dtype fp8_e5m2"
  std::optional<std::string> llama_cpp;  // e.g. "-ctk q8_0 -ctv q8_0 -fa on"
  std::string why_not;                   // for each server without settings, the reason
};

DeploySettings deploy_settings(const kv::KvPolicy& policy, int n_layers);

}  // namespace kvaudit::diagnose
