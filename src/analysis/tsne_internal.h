// Private pieces of the t-SNE implementation shared by its source files: the distance kernel, the
// joint-probability matrices and the two gradient back ends (exact and Barnes-Hut).
#pragma once

#include <cstdint>
#include <vector>

#include "xlt/analysis/matrix.h"

namespace xlt::analysis::detail {

// Squared Euclidean distance of two float rows. Eight independent accumulators let the compiler
// vectorise without -ffast-math; the summation order is fixed, so the result is reproducible.
inline double squared_distance(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    for (int u = 0; u < 8; ++u) {
      const float t = a[j + u] - b[j + u];
      acc[u] += t * t;
    }
  }
  double s = ((static_cast<double>(acc[0]) + acc[1]) + (acc[2] + acc[3])) +
             ((static_cast<double>(acc[4]) + acc[5]) + (acc[6] + acc[7]));
  for (; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - b[j];
    s += t * t;
  }
  return s;
}

// The symmetric joint probabilities P of t-SNE, sparse (Barnes-Hut, CSR) or dense (exact).
struct SparseP {
  int64_t n = 0;
  std::vector<int64_t> row_ptr;  // [n + 1]
  std::vector<int32_t> col;      // 32 bits: half the bytes streamed per gradient iteration
  std::vector<double> val;
  // val in float32 for the attractive forces (as sklearn's Barnes-Hut). Filled by
  // finish_compact().
  std::vector<float> val32;
  void finish_compact() { val32.assign(val.begin(), val.end()); }
};

// Gradient of KL(P || Q) with respect to the [n, 2] map `y`, written into `grad` ([n, 2]).
// `exaggeration` multiplies P. When `kl` is non-null the KL divergence (with exaggerated P, as
// sklearn reports it during early exaggeration) is stored there.
void exact_gradient(const std::vector<double>& p_dense, int64_t n, const std::vector<double>& y,
                    double exaggeration, int threads, std::vector<double>& grad, double* kl);
void barnes_hut_gradient(const SparseP& p, const std::vector<double>& y, double theta,
                         double exaggeration, int threads, std::vector<double>& grad, double* kl);

// Blocks used for all per-point parallel loops; fixed so results do not depend on threads.
inline constexpr int64_t kPointBlock = 128;

}  // namespace xlt::analysis::detail
