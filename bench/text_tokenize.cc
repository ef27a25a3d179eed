// Tokenizer throughput (SPEC.md §2 speed): MB/s encoding the WikiText-2 test text, whole text in
// one call, single thread. Compare with HF `tokenizers` timed by tools/bench_text_hf.py on the
// same text and tokenizer (numbers in docs/PERFORMANCE.md).
//   bench_text_tokenize TEXT MODEL [MODEL...]   (MODEL: HF dir or .gguf)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <algorithm>

#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TEXT MODEL [MODEL...]\n", argv[0]);
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const double mb = static_cast<double>(text.size()) / 1e6;
  constexpr int kRepeats = 5;
  for (int m = 2; m < argc; ++m) {
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    const auto tok = kvaudit::text::Tokenizer::load_for_model(argv[m]);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    double first = 0, best = 1e30;
    size_t n_ids = 0;
    for (int r = 0; r < kRepeats; ++r) {  // first run: cold word cache; later runs: warm
      t0 = clock::now();
      n_ids = tok.encode(text, false).size();
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      if (r == 0) first = s;
      best = std::min(best, s);
    }
    // Line by line (each line with its newline), as a batch of prompts is tokenized.
    std::vector<std::string> lines;
    for (size_t i = 0; i < text.size();) {
      const size_t j = std::min(text.find('\n', i), text.size() - 1) + 1;
      lines.push_back(text.substr(i, j - i));
      i = j;
    }
    double best_lines = 1e30;
    size_t n_line_ids = 0;
    for (int r = 0; r < kRepeats; ++r) {
      t0 = clock::now();
      n_line_ids = 0;
      for (const auto& l : lines) n_line_ids += tok.encode(l, false).size();
      best_lines = std::min(best_lines, std::chrono::duration<double>(clock::now() - t0).count());
    }
    std::printf("%s: %.2f MB, load %.2f s | whole text: %zu tokens, cold %.1f MB/s, warm best of %d %.1f MB/s"
                " | %zu lines: %zu tokens, best of %d %.1f MB/s\n",
                argv[m], mb, load_s, n_ids, mb / first, kRepeats, mb / best, lines.size(), n_line_ids, kRepeats,
                mb / best_lines);
  }
  return 0;
}
