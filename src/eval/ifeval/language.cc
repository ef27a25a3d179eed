// language:response_language (reference: ResponseLanguageChecker, langdetect; here CLD2).
#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {

Check make_response_language(const Kwargs& kw) {
  const std::string want = kw.str("language");
  return [=](std::string_view r) {
    const std::string lang = detect_language(r);
    return lang.empty() || lang == want;  // no letters: langdetect raises, the reference passes it
  };
}

}  // namespace kvaudit::eval::ifeval
