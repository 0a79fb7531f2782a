// Classification statistics for evaluation: accuracy, per-class precision/recall/F1, macro-F1,
// confusion matrix, chance level, seeded percentile-bootstrap confidence intervals, the
// cross-lingual transfer gap, and mean/std across seeds. Pure functions on label vectors: no
// libtorch, no threads, deterministic (the bootstrap uses xlt::data::Xoshiro256ss, see
// docs/data.md "Statistics" for every definition).
//
// Usage:
//   auto cm = xlt::eval::confusion_matrix(gold, pred, 3);
//   double f1 = xlt::eval::macro_f1(cm);
//   auto ci = xlt::eval::bootstrap_accuracy_ci(gold, pred, {1000, seed});
//   auto gap = xlt::eval::transfer_gap(correct_en, correct_es, /*paired=*/true, {1000, seed});
//
// Labels are ids 0..num_classes-1. Gold labels must be present (no kNoLabel): evaluating
// unlabelled data throws DataError; mismatched sizes or out-of-range ids throw xlt::Error.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace xlt::eval {

// Rows: gold label, columns: predicted label (sklearn's confusion_matrix layout).
using ConfusionMatrix = std::vector<std::vector<int64_t>>;

struct Interval {
  double low = 0.0;
  double high = 0.0;
};

struct ClassMetrics {
  std::string name;
  double precision = 0.0;  // TP / predicted; 0 when the class is never predicted
  double recall = 0.0;     // TP / support; 0 when the class never occurs in gold
  double f1 = 0.0;         // 2PR / (P + R); 0 when P + R = 0
  int64_t support = 0;     // gold examples of this class
  int64_t predicted = 0;   // examples predicted as this class
};

struct BootstrapOptions {
  int resamples = 1000;  // B; results stabilise in the third decimal from about 1000
  uint64_t seed = 0;
  double level = 0.95;  // central coverage of the interval
};

// Checks sizes and ranges (gold in [0, num_classes), pred in [0, num_classes)).
void check_labels(const std::vector<int>& gold, const std::vector<int>& pred, int num_classes);

ConfusionMatrix confusion_matrix(const std::vector<int>& gold, const std::vector<int>& pred,
                                 int num_classes);
// Fraction of positions where pred == gold. Throws on empty input.
double accuracy(const std::vector<int>& gold, const std::vector<int>& pred);
// 1 where pred == gold, else 0.
std::vector<uint8_t> correctness(const std::vector<int>& gold, const std::vector<int>& pred);

// One entry per class (names.size() must equal the matrix size).
std::vector<ClassMetrics> per_class_metrics(const ConfusionMatrix& cm,
                                            const std::vector<std::string>& names);
// Unweighted mean F1 over the classes that occur in gold or in pred (scikit-learn's
// f1_score(average="macro") without an explicit labels= argument).
double macro_f1(const ConfusionMatrix& cm);
// Majority-class rate: max_c count(gold == c) / n, the accuracy of always predicting the most
// frequent gold class (1/3 on balanced XNLI).
double chance_level(const std::vector<int>& gold, int num_classes);

// q-quantile of sorted values with linear interpolation between order statistics (NumPy's
// default "linear" method): h = (B - 1) q, v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h]).
double quantile_sorted(const std::vector<double>& sorted, double q);

// Percentile bootstrap: for resample b = 0..B-1, draw n positions with replacement using
// Xoshiro256ss(derive_seed(seed, b)).uniform_below(n), evaluate `statistic` on them; the interval
// is the ((1-level)/2, (1+level)/2) quantiles of the B values. Independent of thread count by
// construction (each resample has its own stream).
Interval bootstrap_ci(int64_t n,
                      const std::function<double(const std::vector<int64_t>&)>& statistic,
                      const BootstrapOptions& options);
// bootstrap_ci of the mean of 0/1 correctness (specialised: no per-resample allocation).
Interval bootstrap_accuracy_ci(const std::vector<uint8_t>& correct,
                               const BootstrapOptions& options);
Interval bootstrap_accuracy_ci(const std::vector<int>& gold, const std::vector<int>& pred,
                               const BootstrapOptions& options);

// Wilson score interval of a binomial proportion hits/n at `level` (z the standard normal's
// (1+level)/2 quantile). Unlike the percentile bootstrap it keeps a width when hits is 0 or n.
Interval wilson_interval(int64_t hits, int64_t n, double level);

enum class IntervalMethod { kPercentileBootstrap, kWilson };
// "percentile" or "wilson" (results.json's ci95_method).
const char* interval_method_name(IntervalMethod method);

// The accuracy interval xlt reports: the percentile bootstrap, except when every example is right
// or every one wrong: then each resample has the same accuracy and the bootstrap collapses to a
// point (20 of 20 right gave [1, 1]), so the Wilson interval at the same level is used instead.
struct AccuracyInterval {
  Interval ci;
  IntervalMethod method = IntervalMethod::kPercentileBootstrap;
};
AccuracyInterval accuracy_ci(const std::vector<uint8_t>& correct, const BootstrapOptions& options);

struct TransferGap {
  double gap = 0.0;  // accuracy(source) - accuracy(target); positive = worse in the target
  Interval ci;       // percentile bootstrap interval at BootstrapOptions::level
  bool paired = false;
};

// Transfer gap with a bootstrap CI. Paired (parallel sets, same size, position i = same item):
// each resample draws one set of n positions and applies it to both languages, which removes the
// item-difficulty variance shared by translations. Unpaired: each resample draws n_source
// positions, then n_target positions, from the same per-resample generator.
TransferGap transfer_gap(const std::vector<uint8_t>& correct_source,
                         const std::vector<uint8_t>& correct_target, bool paired,
                         const BootstrapOptions& options);

struct MeanStd {
  double mean = 0.0;
  double std = 0.0;  // sample standard deviation (n - 1 denominator); NaN when n < 2
  int64_t n = 0;
};
// Mean and sample std of per-seed results (e.g. accuracy of 5 fine-tuning seeds). NaN mean for
// empty input.
MeanStd mean_std(const std::vector<double>& values);

}  // namespace xlt::eval
