#include "eval/guard_judge.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "engine/generate.h"
#include "eval/guard_format.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {

namespace {
model::Model load_guard(const std::string& path) {
  model::LoadOptions lo;
  lo.compute_sha256 = false;
  return model::load_model(path, lo);
}
}  // namespace

GuardJudge::GuardJudge(const JudgeSpec& spec, engine::Device device, int threads,
                       const std::string& data_dir, int batch_size)
    : spec_(spec), model_(load_guard(spec.model_path)),
      tok_(text::Tokenizer::load_for_model(spec.model_path)),
      backend_(engine::make_backend(device, model_, {threads})), batch_size_(batch_size) {
  if (spec.format == GuardFormat::kWildGuard) {
    template_ = io::read_file(
        (std::filesystem::path(data_dir) / "chat_templates" / "wildguard.format.txt").string());
  } else {
    const auto t = tok_.chat_template();
    if (!t) usage_error("--judge '{}': the guard model has no chat template", spec.name);
    template_ = *t;
  }
}

std::string GuardJudge::format(const std::string& prompt, const std::string& response) const {
  if (spec_.format == GuardFormat::kWildGuard) return format_wildguard(template_, prompt, response);
  return format_llamaguard3(template_, prompt, response);
}

std::vector<Verdict> GuardJudge::judge(const std::vector<const Prompt*>& prompts,
                                       const std::vector<std::string>& responses) {
  std::vector<engine::GenerateRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    // WildGuard's library lets the tokenizer add <s>; Llama Guard's template writes its own BOS.
    const bool add_special = spec_.format == GuardFormat::kWildGuard;
    reqs.push_back({tok_.encode(format(prompts[i]->text, responses[i]), add_special), nullptr});
  }
  engine::GenerateOptions opt;
  opt.max_new_tokens = kGuardMaxNewTokens;
  opt.batch_size = batch_size_;
  opt.stop_ids = model_.config.eos_ids;
  for (int id : tok_.eos_ids())
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) == opt.stop_ids.end()) opt.stop_ids.push_back(id);
  const auto res = engine::generate(*backend_, reqs, opt);
  std::vector<Verdict> out;
  for (const auto& r : res) out.push_back(guard_verdict(spec_.format, tok_.decode(r.tokens, true)));
  return out;
}

}  // namespace kvaudit::eval
