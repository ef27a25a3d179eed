// IFEval scoring (Zhou et al. 2023; SPEC.md §4): the prompts with their instructions, strict and
// loose verdicts per instruction, and the four accuracies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eval/ifeval/instruction.h"

namespace kvaudit::eval::ifeval {

struct Item {
  int64_t key = 0;
  std::string prompt;
  std::vector<std::string> instruction_ids;  // instruction_id_list, in order
  std::vector<Check> checks;                 // parallel to instruction_ids
};

// <data_dir>/ifeval/input_data.jsonl
std::string dataset_path(const std::string& data_dir);

// Every line of an IFEval input file, in file order. UsageError naming path and line for a
// malformed line, an unknown instruction id, bad kwargs, or a repeated key or prompt.
std::vector<Item> load_items(const std::string& path);

struct Verdict {
  std::vector<bool> strict, loose;  // follow_instruction_list, parallel to instruction_ids
  bool all_strict = false, all_loose = false;  // follow_all_instructions
};

// Strict: each checker on the response as given; an empty or whitespace-only response follows
// nothing. Loose: followed if any of 8 variants passes (as given, first line dropped, last line
// dropped, both, each of the four with every '*' removed; dropped variants are stripped).
// Invalid UTF-8 is read as U+FFFD per byte.
Verdict score(const Item& item, std::string_view response);

struct Accuracy {
  size_t prompts = 0, instructions = 0;
  size_t prompt_strict = 0, prompt_loose = 0, inst_strict = 0, inst_loose = 0;  // followed counts
  // Fractions (NaN when there is nothing to score).
  double prompt_strict_acc() const;
  double prompt_loose_acc() const;
  double inst_strict_acc() const;
  double inst_loose_acc() const;
  void add(const Verdict& v);
};

}  // namespace kvaudit::eval::ifeval
