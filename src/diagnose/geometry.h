// Refusal geometry (SPEC.md §5 "Geometry"), per layer, from residual streams at the last prompt
// token: refusal direction = mean over harmful prompts - mean over harmless ones; safety subspace
// S = span of the top-k principal directions of the per-pair differences (uncentred: the
// differences' own directions, so the refusal direction, their mean, is not projected away);
// vulnerability ratio of a scheme = (|P_S(h_q - h)| / |P_S h|) / (|h_q - h| / |h|), the median over
// harmful prompts, beside the same ratio for a seeded random subspace of S's dimension (≈ 1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvaudit::diagnose {

// Residual streams of one layer: [n_prompts][d_model].
using Residuals = std::vector<std::vector<float>>;

// An orthonormal basis [k][d] of the top-k principal directions of diffs [n][d] (k <= rank).
std::vector<std::vector<double>> principal_directions(const Residuals& diffs, int k);
// An orthonormal basis [k][d] of a seeded random (Gaussian, Gram-Schmidt) subspace.
std::vector<std::vector<double>> random_subspace(int d, int k, uint64_t seed);

// (|P_S(hq - h)| / |P_S h|) / (|hq - h| / |h|) for one prompt; NaN when hq == h or a norm is 0.
double vulnerability_ratio(const std::vector<double>* basis_begin, size_t k, const std::vector<float>& h,
                           const std::vector<float>& hq);

struct LayerGeometry {
  int layer = 0;
  double refusal_direction_norm = 0;  // |mean harmful - mean harmless|
  double vulnerability_ratio = 0;     // median over harmful prompts; NaN if none defined
  double random_ratio = 0;            // the random-subspace control
};

// harmful / harmless: baseline residuals of paired prompts (same count); harmful_q: the harmful
// prompts' residuals under the scheme.
LayerGeometry layer_geometry(int layer, const Residuals& harmful, const Residuals& harmless,
                             const Residuals& harmful_q, int subspace_k, uint64_t seed);

}  // namespace kvaudit::diagnose
