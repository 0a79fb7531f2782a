// Statistics the study adds on top of xlt/eval/metrics.h: Spearman's rank correlation between the
// transfer gap and linguistic distance, with an exact permutation p-value for the small numbers
// of languages such studies have. Pure functions, deterministic, no libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xlt::study {

// Ranks 1..n of `values`, ties sharing the mean of their ranks (scipy.stats.rankdata "average").
std::vector<double> average_ranks(const std::vector<double>& values);

// Pearson correlation of two equally long vectors; NaN when either is constant or n < 2.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

inline constexpr int kMinMeaningfulLanguages = 4;

struct RankCorrelation {
  int n = 0;
  double rho = 0.0;  // Spearman's rho = Pearson correlation of the average ranks; NaN if undefined
  double p_value = 1.0;     // two-sided: share of permutations of y with |rho| >= observed |rho|
  bool exact = true;        // all n! permutations (n <= 8) or 200,000 seeded random ones
  bool meaningful = false;  // n >= kMinMeaningfulLanguages and rho defined
  std::string note;         // plain-language caveat for reports
};

// Spearman's rho between x and y (same length) with its permutation p-value. Monte Carlo
// permutations (n > 8) use xlt::data::Xoshiro256ss(seed), so results are reproducible.
RankCorrelation spearman(const std::vector<double>& x, const std::vector<double>& y,
                         uint64_t seed = 0);

}  // namespace xlt::study
