#include "text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "text/utf8.h"

namespace kvaudit::text {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, const std::string& what, unsigned flags)
    : impl_(std::make_unique<Impl>()) {
  uint32_t opts = PCRE2_UTF | PCRE2_UCP;
  if (flags & kCaseless) opts |= PCRE2_CASELESS;
  if (flags & kMultiline) opts |= PCRE2_MULTILINE;
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err, &off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    usage_error("{}: regex '{}' does not compile at offset {}: {}", what, pattern, off,
                reinterpret_cast<const char*>(buf));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  // Thread-local match data: find_all is called concurrently from const Tokenizer methods.
  thread_local std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create(4, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t start = 0;
  // The subject is validated once by the caller; skip PCRE2's per-call UTF check.
  const uint32_t opts = PCRE2_NO_UTF_CHECK;
  while (start <= s.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), start, opts, md.get(), nullptr)
                              : pcre2_match(impl_->code, subject, s.size(), start, opts, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) runtime_error("regex match failed with PCRE2 error {}", rc);
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e == b) {
      if (b >= s.size()) break;
      start = b + utf8_char_len(s, b);
      continue;  // HF's split ignores empty matches
    }
    out.emplace_back(b, e);
    start = e;
  }
  return out;
}

bool Regex::search(std::string_view s) const {
  thread_local std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create(4, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), 0, PCRE2_NO_UTF_CHECK, md.get(), nullptr)
                            : pcre2_match(impl_->code, subject, s.size(), 0, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) runtime_error("regex match failed with PCRE2 error {}", rc);
  return true;
}

}  // namespace kvaudit::text
