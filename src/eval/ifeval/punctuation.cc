// punctuation:no_comma (reference: CommaChecker). Only the ASCII comma counts.
#include "eval/ifeval/instruction.h"

namespace kvaudit::eval::ifeval {

Check make_no_comma(const Kwargs&) {
  return [](std::string_view r) { return r.find(',') == std::string_view::npos; };
}

}  // namespace kvaudit::eval::ifeval
