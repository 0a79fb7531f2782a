// Spearman's rank correlation with an exact (small n) or seeded Monte Carlo permutation test.
#include "xlt/study/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

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
  // Monte Carlo: the observed ordering is one of the orderings, so the estimate is never 0
  // (Phipson & Smyth 2010); the exact count already includes it.
  r.p_value = r.exact ? static_cast<double>(extreme) / static_cast<double>(total)
                      : static_cast<double>(extreme + 1) / static_cast<double>(total + 1);
  r.meaningful = r.n >= kMinMeaningfulLanguages;
  if (!r.meaningful) {
    double factorial = 1;
    for (int i = 2; i <= r.n; ++i) factorial *= i;
    std::ostringstream smallest;
    smallest.precision(2);
    smallest << 2 / factorial;
    r.note = "Only " + std::to_string(r.n) +
             " target languages: too few for a meaningful rank correlation (at least " +
             std::to_string(kMinMeaningfulLanguages) + " are needed; with " + std::to_string(r.n) +
             " the smallest possible two-sided p is 2/" + std::to_string(r.n) +
             "! = " + smallest.str() + ", so no ordering is significant at the 5% level).";
  } else if (r.p_value >= 0.05) {
    r.note = "Not significant at the 5% level.";
  } else {
    r.note = "Significant at the 5% level (permutation test).";
  }
  return r;
}

namespace {

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  // Linear interpolation between closest ranks (numpy's default).
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

Interval spearman_bootstrap_ci(const std::vector<double>& x, const std::vector<double>& y,
                               int resamples, uint64_t seed) {
  if (x.size() != y.size()) throw Error("spearman_bootstrap_ci: sizes differ");
  Interval out{NAN, NAN, 0};
  const size_t n = x.size();
  if (n < static_cast<size_t>(kMinMeaningfulLanguages)) return out;
  data::Xoshiro256ss rng(seed);
  std::vector<double> rhos, bx(n), by(n);
  for (int r = 0; r < resamples; ++r) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(rng.uniform_below(n));
      bx[i] = x[k];
      by[i] = y[k];
    }
    const double rho = pearson(average_ranks(bx), average_ranks(by));
    if (std::isfinite(rho)) rhos.push_back(rho);
  }
  if (rhos.empty()) return out;
  out.used = static_cast<int>(rhos.size());
  out.low = percentile(rhos, 0.025);
  out.high = percentile(rhos, 0.975);
  return out;
}

namespace {

// Gap of `runs` with every row weighted by how often the resample drew it.
double weighted_gap(const std::vector<SeedRows>& runs, const std::vector<uint32_t>& weight,
                    double total) {
  double sum = 0.0;
  for (const auto& s : runs) {
    int64_t src = 0, tgt = 0;
    for (size_t i = 0; i < weight.size(); ++i) {
      src += weight[i] * s.source[i];
      tgt += weight[i] * s.target[i];
    }
    sum += static_cast<double>(src - tgt) / total;
  }
  return sum / static_cast<double>(runs.size());
}

void check_rows(const std::vector<SeedRows>& runs, size_t n) {
  if (runs.empty()) throw Error("paired_gap_difference: a model has no runs");
  for (const auto& s : runs) {
    if (s.source.size() != n || s.target.size() != n) {
      throw Error("paired_gap_difference: every run needs the same " + std::to_string(n) +
                  " parallel rows");
    }
  }
}

}  // namespace

double mean_gap(const std::vector<SeedRows>& runs) {
  if (runs.empty()) return NAN;
  const std::vector<uint32_t> ones(runs.front().source.size(), 1);
  return weighted_gap(runs, ones, static_cast<double>(ones.size()));
}

PairedDifference paired_gap_difference(const std::vector<SeedRows>& a,
                                       const std::vector<SeedRows>& b, int resamples,
                                       uint64_t seed) {
  const size_t n = a.empty() ? 0 : a.front().source.size();
  check_rows(a, n);
  check_rows(b, n);
  if (n == 0) throw Error("paired_gap_difference: no rows");
  PairedDifference d;
  d.rows = static_cast<int64_t>(n);
  d.gap_a = mean_gap(a);
  d.gap_b = mean_gap(b);
  d.difference = d.gap_a - d.gap_b;
  data::Xoshiro256ss rng(seed);
  std::vector<double> diffs;
  std::vector<uint32_t> w(n);
  for (int r = 0; r < resamples; ++r) {
    std::fill(w.begin(), w.end(), 0u);
    for (size_t i = 0; i < n; ++i) ++w[rng.uniform_below(n)];
    diffs.push_back(weighted_gap(a, w, static_cast<double>(n)) -
                    weighted_gap(b, w, static_cast<double>(n)));
  }
  d.low = percentile(diffs, 0.025);
  d.high = percentile(diffs, 0.975);
  return d;
}

}  // namespace xlt::study
