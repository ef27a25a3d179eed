// Deterministic random subsets for --limit N --seed S (SPEC.md §4).
// std::shuffle and std::uniform_int_distribution are implementation-defined, so the same seed
// would pick different prompts with libstdc++ and libc++. std::mt19937_64's output sequence is
// fixed by the standard; on top of it this file defines its own bounded draw and Fisher–Yates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace kvaudit::eval {

// Uniform integer in [0, bound) by rejection (Lemire's threshold: reject r < 2^64 mod bound), so
// no modulo bias. bound > 0.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound);

// Indices 0..n-1 permuted by Fisher–Yates: for i = n-1 down to 1, swap(i, uniform_below(i + 1)).
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed);

// The first k indices of seeded_permutation(n, seed), sorted ascending (so a subset keeps the
// dataset's order). k >= n returns all of 0..n-1.
std::vector<size_t> seeded_subset(size_t n, size_t k, uint64_t seed);

}  // namespace kvaudit::eval
