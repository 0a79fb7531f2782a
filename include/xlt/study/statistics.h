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

// Below this many target languages no ordering can reach p < 0.05: the smallest two-sided
// permutation p is 2/n!, 1/3 for 3 languages and 1/12 for 4, 1/60 for 5.
inline constexpr int kMinMeaningfulLanguages = 5;

struct RankCorrelation {
  int n = 0;
  double rho = 0.0;  // Spearman's rho = Pearson correlation of the average ranks; NaN if undefined
  // Two-sided: share of permutations of y with |rho| >= observed |rho|; exact over all n!
  // permutations (n <= 8), else (k + 1) / (N + 1) over N = 200,000 seeded random ones (never 0:
  // the observed ordering counts as one of them).
  double p_value = 1.0;
  bool exact = true;        // false: the Monte Carlo estimate above
  bool meaningful = false;  // n >= kMinMeaningfulLanguages and rho defined
  std::string note;         // plain-language caveat for reports
};

// Spearman's rho between x and y (same length) with its permutation p-value. Monte Carlo
// permutations (n > 8) use xlt::data::Xoshiro256ss(seed), so results are reproducible.
RankCorrelation spearman(const std::vector<double>& x, const std::vector<double>& y,
                         uint64_t seed = 0);

// Percentile bootstrap 95% interval of Spearman's rho: the (x, y) pairs (one per target
// language) are resampled with replacement `resamples` times (Xoshiro256ss(seed)); resamples in
// which rho is undefined (a constant column) are dropped. {NaN, NaN} when fewer than
// kMinMeaningfulLanguages pairs (with 3, a resample can only give +-1 or the observed ordering,
// and the "interval" is a point) or no resample defines rho. `used` returns the number of resamples
// that counted.
struct Interval {
  double low = 0.0, high = 0.0;
  int used = 0;
};
Interval spearman_bootstrap_ci(const std::vector<double>& x, const std::vector<double>& y,
                               int resamples, uint64_t seed);

// One seed's per-row correctness (1 right, 0 wrong) in the source and a target language; row i
// is the same parallel item in both, and in every seed and model passed together.
struct SeedRows {
  std::vector<uint8_t> source, target;
};

// The transfer gap of a model on the given rows: mean over seeds of
// accuracy(source) - accuracy(target).
double mean_gap(const std::vector<SeedRows>& runs);

// Gap of model A minus gap of model B on the same parallel rows, with a paired percentile
// bootstrap 95% interval: rows are resampled with replacement (the same draw for both models,
// every seed and both languages), so the interval reflects test-set sampling with the pairing
// kept. Seeds of different models need not match. Throws xlt::Error for unequal row counts.
struct PairedDifference {
  double gap_a = 0.0, gap_b = 0.0, difference = 0.0;
  double low = 0.0, high = 0.0;
  int64_t rows = 0;
};
PairedDifference paired_gap_difference(const std::vector<SeedRows>& a,
                                       const std::vector<SeedRows>& b, int resamples,
                                       uint64_t seed);

}  // namespace xlt::study
