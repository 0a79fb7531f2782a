// Spearman's rank correlation with an exact (small n) or seeded Monte Carlo permutation test.
#include "xlt/study/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "xlt/core/error.h"
#include "xlt/data/random.h"

namespace xlt::study {

std::vector<double> average_ranks(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
    const double mean_rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = mean_rank;
    i = j + 1;
  }
  return ranks;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("pearson: sizes differ");
  const size_t n = x.size();
  if (n < 2) return NAN;
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return NAN;
  return sxy / std::sqrt(sxx * syy);
}

RankCorrelation spearman(const std::vector<double>& x, const std::vector<double>& y,
                         uint64_t seed) {
  if (x.size() != y.size()) throw Error("spearman: sizes differ");
  RankCorrelation r;
  r.n = static_cast<int>(x.size());
  const auto rx = average_ranks(x);
  auto ry = average_ranks(y);
  r.rho = pearson(rx, ry);
  if (!std::isfinite(r.rho)) {
    r.p_value = NAN;
    r.note = r.n < 2 ? "Fewer than two languages: no correlation can be computed."
                     : "All languages share the same gap or the same distance: no ranking.";
    return r;
  }
  // Rounding slack so that permutations with the same |rho| as observed count as "as extreme".
  const double observed = std::abs(r.rho) - 1e-12;
  int64_t extreme = 0, total = 0;
  if (r.n <= 8) {
    std::vector<double> perm = ry;
    std::sort(perm.begin(), perm.end());
    do {
      const double rho = pearson(rx, perm);
      extreme += std::isfinite(rho) && std::abs(rho) >= observed;
      ++total;
    } while (std::next_permutation(perm.begin(), perm.end()));
    // next_permutation skips duplicate arrangements of tied ranks; each distinct arrangement is
    // equally likely under the null, so the ratio is still exact.
  } else {
    r.exact = false;
    data::Xoshiro256ss rng(seed);
    std::vector<double> perm = ry;
    constexpr int64_t kDraws = 200000;
    for (int64_t i = 0; i < kDraws; ++i) {
      data::shuffle(perm, rng);
      const double rho = pearson(rx, perm);
      extreme += std::isfinite(rho) && std::abs(rho) >= observed;
    }
    total = kDraws;
  }
  r.p_value = static_cast<double>(extreme) / static_cast<double>(total);
  r.meaningful = r.n >= kMinMeaningfulLanguages;
  if (!r.meaningful) {
    r.note = "Only " + std::to_string(r.n) +
             " target languages: too few for a meaningful rank correlation (at least " +
             std::to_string(kMinMeaningfulLanguages) +
             " are needed; with 3, rho can only be +-1 or +-0.5 and the smallest possible "
             "two-sided p is 1/3).";
  } else if (r.p_value >= 0.05) {
    r.note = "Not significant at the 5% level.";
  } else {
    r.note = "Significant at the 5% level (permutation test).";
  }
  return r;
}

}  // namespace xlt::study
