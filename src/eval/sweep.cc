#include "eval/sweep.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"

namespace kvaudit::eval {

std::vector<int> parse_bits(const std::string& list, const std::string& flag) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(pos, end - pos);
    int v = 0;
    bool ok = !item.empty() && item.size() <= 2;
    for (char c : item) ok = ok && std::isdigit(static_cast<unsigned char>(c));
    if (ok) v = std::stoi(item);
    // The families' codes are 1..8 bits (SPEC.md §3); 16 is the baseline.
    if (!ok || v < 1 || (v > 8 && v != 16))
      usage_error("{}: '{}' is not a bit-width of a sweep: 1..8, or 16 for the baseline (list: '{}')", flag, item, list);
    if (std::find(out.begin(), out.end(), v) != out.end()) usage_error("{}: {} is given twice (list: '{}')", flag, v, list);
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

std::string sweep_spec(const std::string& family, int bits) {
  if (bits == 16) return "fp16";
  const size_t colon = family.find(':');
  const std::string head = family.substr(0, colon);
  const std::string tail = colon == std::string::npos ? "" : family.substr(colon);
  if (head != "int" && head != "kivi" && head != "nuq")
    usage_error("--scheme '{}': a sweep needs a family without bits: int[:...], kivi[:...] or nuq[:...]", family);
  return head + std::to_string(bits) + tail;
}

std::optional<FamilyMember> sweep_family(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string head = spec.substr(0, colon);
  size_t digits = head.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(head[digits - 1]))) --digits;
  const std::string name = head.substr(0, digits);
  if (digits == head.size() || head.size() - digits > 2 || (name != "int" && name != "kivi" && name != "nuq"))
    return std::nullopt;
  return FamilyMember{name + (colon == std::string::npos ? "" : spec.substr(colon)), std::stoi(head.substr(digits))};
}

std::optional<int> onset_bits(const std::vector<SweepPoint>& points, double threshold) {
  std::optional<int> best;
  for (const auto& p : points)
    if (std::isfinite(p.metrics.flip_ci_low) && p.metrics.flip_ci_low > threshold && (!best || p.bits > *best))
      best = p.bits;
  return best;
}

}  // namespace kvaudit::eval
