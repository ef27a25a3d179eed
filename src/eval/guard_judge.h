// `--judge model:PATH[:wildguard|:llamaguard3]`: a guard model run by the same engine (SPEC.md §4),
// greedy, up to kGuardMaxNewTokens, its answer parsed by eval/guard_format.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "eval/benchmarks.h"
#include "eval/judges.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace kvaudit::eval {

// WildGuard's three answer lines fit in 32 tokens (the research code's limit); Llama Guard's in 50.
inline constexpr int kGuardMaxNewTokens = 50;

class GuardJudge {
 public:
  // Loads the guard model and its tokenizer. WildGuard's prompt format is read from
  // <data_dir>/chat_templates/wildguard.format.txt; Llama Guard 3 uses the model's own template.
  GuardJudge(const JudgeSpec& spec, engine::Device device, int threads, const std::string& data_dir,
             int batch_size);

  // The guard's input for one pair (text, before tokenization). Pure given the loaded template.
  std::string format(const std::string& prompt, const std::string& response) const;

  std::vector<Verdict> judge(const std::vector<const Prompt*>& prompts,
                             const std::vector<std::string>& responses);

 private:
  JudgeSpec spec_;
  model::Model model_;
  text::Tokenizer tok_;
  std::unique_ptr<engine::Backend> backend_;
  std::string template_;  // WildGuard format string or Llama Guard chat template
  int batch_size_;
};

}  // namespace kvaudit::eval
