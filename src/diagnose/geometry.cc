#include "diagnose/geometry.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include <Eigen/Dense>

#include "eval/metrics.h"

namespace kvaudit::diagnose {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return eval::kNaN;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

std::vector<std::vector<double>> principal_directions(const Residuals& diffs, int k) {
  const int n = int(diffs.size());
  if (n == 0 || k <= 0) return {};
  const int d = int(diffs[0].size());
  Eigen::MatrixXd D(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) D(i, j) = diffs[size_t(i)][size_t(j)];
  // Right singular vectors of D from the n x n Gram matrix (n << d): D^T v / sqrt(lambda).
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(D * D.transpose());
  std::vector<std::vector<double>> basis;
  const double top = eig.eigenvalues()(n - 1);
  for (int e = n - 1; e >= 0 && int(basis.size()) < k; --e) {
    const double lambda = eig.eigenvalues()(e);
    if (!(lambda > top * 1e-12) || lambda <= 0) break;  // rank exhausted
    Eigen::VectorXd u = D.transpose() * eig.eigenvectors().col(e) / std::sqrt(lambda);
    basis.emplace_back(u.data(), u.data() + d);
  }
  return basis;
}

std::vector<std::vector<double>> random_subspace(int d, int k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Eigen::MatrixXd M(d, k);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < d; ++i) M(i, j) = nd(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(M);
  Eigen::MatrixXd Q = qr.householderQ() * Eigen::MatrixXd::Identity(d, k);
  std::vector<std::vector<double>> basis;
  for (int j = 0; j < k; ++j) basis.emplace_back(Q.col(j).data(), Q.col(j).data() + d);
  return basis;
}

double vulnerability_ratio(const std::vector<double>* basis, size_t k, const std::vector<float>& h,
                           const std::vector<float>& hq) {
  const size_t d = h.size();
  if (hq.size() != d) throw std::logic_error("vulnerability_ratio: residual sizes differ");
  double dn2 = 0, hn2 = 0;
  for (size_t i = 0; i < d; ++i) {
    const double dv = double(hq[i]) - double(h[i]);
    dn2 += dv * dv;
    hn2 += double(h[i]) * double(h[i]);
  }
  double pd2 = 0, ph2 = 0;
  for (size_t j = 0; j < k; ++j) {
    double pd = 0, ph = 0;
    for (size_t i = 0; i < d; ++i) {
      pd += basis[j][i] * (double(hq[i]) - double(h[i]));
      ph += basis[j][i] * double(h[i]);
    }
    pd2 += pd * pd;
    ph2 += ph * ph;
  }
  if (dn2 == 0 || hn2 == 0 || ph2 == 0) return eval::kNaN;
  return (std::sqrt(pd2) / std::sqrt(ph2)) / (std::sqrt(dn2) / std::sqrt(hn2));
}

LayerGeometry layer_geometry(int layer, const Residuals& harmful, const Residuals& harmless,
                             const Residuals& harmful_q, int subspace_k, uint64_t seed) {
  if (harmful.size() != harmless.size() || harmful.size() != harmful_q.size() || harmful.empty())
    throw std::logic_error("layer_geometry: need the same non-zero number of harmful, harmless and scheme residuals");
  const size_t n = harmful.size(), d = harmful[0].size();
  LayerGeometry g;
  g.layer = layer;
  Residuals diffs(n, std::vector<float>(d));
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) {
      diffs[i][j] = harmful[i][j] - harmless[i][j];
      mean[j] += double(diffs[i][j]) / double(n);
    }
  double mn = 0;
  for (double m : mean) mn += m * m;
  g.refusal_direction_norm = std::sqrt(mn);
  const auto S = principal_directions(diffs, subspace_k);
  const auto R = random_subspace(int(d), int(S.size()), seed);
  std::vector<double> vs, vr;
  for (size_t i = 0; i < n; ++i) {
    const double a = vulnerability_ratio(S.data(), S.size(), harmful[i], harmful_q[i]);
    const double b = vulnerability_ratio(R.data(), R.size(), harmful[i], harmful_q[i]);
    if (!std::isnan(a)) vs.push_back(a);
    if (!std::isnan(b)) vr.push_back(b);
  }
  g.vulnerability_ratio = median(vs);
  g.random_ratio = median(vr);
  return g;
}

}  // namespace kvaudit::diagnose
