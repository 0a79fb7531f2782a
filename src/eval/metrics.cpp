// Classification statistics and seeded bootstrap intervals; see include/xlt/eval/metrics.h and
// docs/data.md. Deliberately free of libtorch (plain vectors) so the numbers are easy to check by
// hand and identical on every machine.
#include "xlt/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "xlt/core/error.h"
#include "xlt/data/random.h"

namespace xlt::eval {

using xlt::data::derive_seed;
using xlt::data::Xoshiro256ss;

namespace {
void check_bootstrap(const BootstrapOptions& o) {
  if (o.resamples < 1) throw Error("bootstrap needs at least 1 resample");
  if (!(o.level > 0.0 && o.level < 1.0))
    throw Error("bootstrap level must be in (0, 1), got " + std::to_string(o.level));
}

Interval percentile_interval(std::vector<double>& stats, double level) {
  std::sort(stats.begin(), stats.end());
  const double tail = (1.0 - level) / 2.0;
  return {quantile_sorted(stats, tail), quantile_sorted(stats, 1.0 - tail)};
}

double mean_of(const std::vector<uint8_t>& v) {
  int64_t s = 0;
  for (uint8_t x : v) s += x;
  return static_cast<double>(s) / static_cast<double>(v.size());
}

// Correct count over n draws with replacement from `correct`.
int64_t resample_hits(const std::vector<uint8_t>& correct, Xoshiro256ss& rng) {
  const uint64_t n = correct.size();
  int64_t hits = 0;
  for (uint64_t i = 0; i < n; ++i) hits += correct[rng.uniform_below(n)];
  return hits;
}
}  // namespace

void check_labels(const std::vector<int>& gold, const std::vector<int>& pred, int num_classes) {
  if (gold.size() != pred.size())
    throw Error("metrics: " + std::to_string(gold.size()) + " gold labels but " +
                std::to_string(pred.size()) + " predictions");
  if (num_classes < 1) throw Error("metrics: need at least one class");
  for (size_t i = 0; i < gold.size(); ++i) {
    if (gold[i] < 0)
      throw DataError("metrics: example " + std::to_string(i) +
                      " has no gold label; evaluation needs labelled data");
    if (gold[i] >= num_classes)
      throw Error("metrics: gold label " + std::to_string(gold[i]) + " at position " +
                  std::to_string(i) + " is outside 0.." + std::to_string(num_classes - 1));
    if (pred[i] < 0 || pred[i] >= num_classes)
      throw Error("metrics: prediction " + std::to_string(pred[i]) + " at position " +
                  std::to_string(i) + " is outside 0.." + std::to_string(num_classes - 1));
  }
}

ConfusionMatrix confusion_matrix(const std::vector<int>& gold, const std::vector<int>& pred,
                                 int num_classes) {
  check_labels(gold, pred, num_classes);
  ConfusionMatrix cm(static_cast<size_t>(num_classes),
                     std::vector<int64_t>(static_cast<size_t>(num_classes), 0));
  for (size_t i = 0; i < gold.size(); ++i)
    ++cm[static_cast<size_t>(gold[i])][static_cast<size_t>(pred[i])];
  return cm;
}

double accuracy(const std::vector<int>& gold, const std::vector<int>& pred) {
  if (gold.empty()) throw Error("metrics: accuracy of an empty set");
  if (gold.size() != pred.size())
    throw Error("metrics: " + std::to_string(gold.size()) + " gold labels but " +
                std::to_string(pred.size()) + " predictions");
  return mean_of(correctness(gold, pred));
}

std::vector<uint8_t> correctness(const std::vector<int>& gold, const std::vector<int>& pred) {
  if (gold.size() != pred.size())
    throw Error("metrics: " + std::to_string(gold.size()) + " gold labels but " +
                std::to_string(pred.size()) + " predictions");
  std::vector<uint8_t> c(gold.size());
  for (size_t i = 0; i < gold.size(); ++i) {
    if (gold[i] < 0)
      throw DataError("metrics: example " + std::to_string(i) +
                      " has no gold label; evaluation needs labelled data");
    c[i] = gold[i] == pred[i] ? 1 : 0;
  }
  return c;
}

std::vector<ClassMetrics> per_class_metrics(const ConfusionMatrix& cm,
                                            const std::vector<std::string>& names) {
  if (names.size() != cm.size())
    throw Error("metrics: " + std::to_string(names.size()) + " label names for a " +
                std::to_string(cm.size()) + "-class confusion matrix");
  std::vector<ClassMetrics> out(cm.size());
  for (size_t c = 0; c < cm.size(); ++c) {
    ClassMetrics& m = out[c];
    m.name = names[c];
    const int64_t tp = cm[c][c];
    for (size_t k = 0; k < cm.size(); ++k) {
      m.support += cm[c][k];
      m.predicted += cm[k][c];
    }
    m.precision = m.predicted ? static_cast<double>(tp) / static_cast<double>(m.predicted) : 0.0;
    m.recall = m.support ? static_cast<double>(tp) / static_cast<double>(m.support) : 0.0;
    m.f1 = (m.precision + m.recall) > 0.0 ? 2.0 * m.precision * m.recall / (m.precision + m.recall)
                                          : 0.0;
  }
  return out;
}

double macro_f1(const ConfusionMatrix& cm) {
  std::vector<std::string> names(cm.size());
  auto per_class = per_class_metrics(cm, names);
  double sum = 0.0;
  int present = 0;
  for (const auto& m : per_class) {
    if (m.support == 0 && m.predicted == 0) continue;
    sum += m.f1;
    ++present;
  }
  return present ? sum / present : 0.0;
}

double chance_level(const std::vector<int>& gold, int num_classes) {
  if (gold.empty()) throw Error("metrics: chance level of an empty set");
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (size_t i = 0; i < gold.size(); ++i) {
    if (gold[i] < 0 || gold[i] >= num_classes)
      throw DataError("metrics: gold label " + std::to_string(gold[i]) + " at position " +
                      std::to_string(i) + " is not a class id");
    ++counts[static_cast<size_t>(gold[i])];
  }
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) /
         static_cast<double>(gold.size());
}

double quantile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) throw Error("quantile of an empty set");
  const double h = (static_cast<double>(sorted.size()) - 1.0) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

Interval bootstrap_ci(int64_t n,
                      const std::function<double(const std::vector<int64_t>&)>& statistic,
                      const BootstrapOptions& options) {
  check_bootstrap(options);
  if (n < 1) throw Error("bootstrap of an empty set");
  std::vector<double> stats(static_cast<size_t>(options.resamples));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int b = 0; b < options.resamples; ++b) {
    Xoshiro256ss rng(derive_seed(options.seed, static_cast<uint64_t>(b)));
    for (auto& i : idx) i = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(n)));
    stats[static_cast<size_t>(b)] = statistic(idx);
  }
  return percentile_interval(stats, options.level);
}

Interval bootstrap_accuracy_ci(const std::vector<uint8_t>& correct,
                               const BootstrapOptions& options) {
  check_bootstrap(options);
  if (correct.empty()) throw Error("bootstrap of an empty set");
  std::vector<double> stats(static_cast<size_t>(options.resamples));
  const double n = static_cast<double>(correct.size());
  for (int b = 0; b < options.resamples; ++b) {
    Xoshiro256ss rng(derive_seed(options.seed, static_cast<uint64_t>(b)));
    stats[static_cast<size_t>(b)] = static_cast<double>(resample_hits(correct, rng)) / n;
  }
  return percentile_interval(stats, options.level);
}

Interval bootstrap_accuracy_ci(const std::vector<int>& gold, const std::vector<int>& pred,
                               const BootstrapOptions& options) {
  return bootstrap_accuracy_ci(correctness(gold, pred), options);
}

namespace {
// Standard normal quantile by bisection on erfc: exact to double precision and only called once
// per interval, so no rational approximation is needed.
double normal_quantile(double p) {
  double lo = -40.0, hi = 40.0;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
}  // namespace

Interval wilson_interval(int64_t hits, int64_t n, double level) {
  if (n < 1) throw Error("Wilson interval of an empty set");
  if (hits < 0 || hits > n) throw Error("Wilson interval: hits outside 0..n");
  if (!(level > 0.0 && level < 1.0))
    throw Error("interval level must be in (0, 1), got " + std::to_string(level));
  const double z = normal_quantile(0.5 + level / 2.0);
  const double nn = static_cast<double>(n), p = static_cast<double>(hits) / nn;
  const double denom = 1.0 + z * z / nn;
  const double center = (p + z * z / (2.0 * nn)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / denom;
  // The bounds reach 0 and 1 exactly at the extremes; clamp the rounding.
  return {hits == 0 ? 0.0 : std::max(0.0, center - half),
          hits == n ? 1.0 : std::min(1.0, center + half)};
}

const char* interval_method_name(IntervalMethod method) {
  return method == IntervalMethod::kWilson ? "wilson" : "percentile";
}

AccuracyInterval accuracy_ci(const std::vector<uint8_t>& correct, const BootstrapOptions& options) {
  check_bootstrap(options);
  if (correct.empty()) throw Error("bootstrap of an empty set");
  int64_t hits = 0;
  for (uint8_t x : correct) hits += x;
  const auto n = static_cast<int64_t>(correct.size());
  if (hits == 0 || hits == n) {
    return {wilson_interval(hits, n, options.level), IntervalMethod::kWilson};
  }
  return {bootstrap_accuracy_ci(correct, options), IntervalMethod::kPercentileBootstrap};
}

TransferGap transfer_gap(const std::vector<uint8_t>& correct_source,
                         const std::vector<uint8_t>& correct_target, bool paired,
                         const BootstrapOptions& options) {
  check_bootstrap(options);
  if (correct_source.empty() || correct_target.empty())
    throw Error("transfer gap: empty result set");
  if (paired && correct_source.size() != correct_target.size())
    throw Error("transfer gap: a paired bootstrap needs parallel sets of equal size (" +
                std::to_string(correct_source.size()) + " vs " +
                std::to_string(correct_target.size()) + ")");
  TransferGap out;
  out.paired = paired;
  out.gap = mean_of(correct_source) - mean_of(correct_target);
  std::vector<double> stats(static_cast<size_t>(options.resamples));
  const uint64_t ns = correct_source.size(), nt = correct_target.size();
  for (int b = 0; b < options.resamples; ++b) {
    Xoshiro256ss rng(derive_seed(options.seed, static_cast<uint64_t>(b)));
    double gap;
    if (paired) {
      // Per-item difference d_i = c_src[i] - c_tgt[i] in {-1, 0, 1}, resampled together.
      int64_t diff = 0;
      for (uint64_t i = 0; i < ns; ++i) {
        uint64_t k = rng.uniform_below(ns);
        diff += static_cast<int64_t>(correct_source[k]) - static_cast<int64_t>(correct_target[k]);
      }
      gap = static_cast<double>(diff) / static_cast<double>(ns);
    } else {
      double src =
          static_cast<double>(resample_hits(correct_source, rng)) / static_cast<double>(ns);
      double tgt =
          static_cast<double>(resample_hits(correct_target, rng)) / static_cast<double>(nt);
      gap = src - tgt;
    }
    stats[static_cast<size_t>(b)] = gap;
  }
  out.ci = percentile_interval(stats, options.level);
  return out;
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd r;
  r.n = static_cast<int64_t>(values.size());
  if (values.empty()) {
    r.mean = r.std = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  double sum = 0.0;
  for (double v : values) sum += v;
  r.mean = sum / static_cast<double>(values.size());
  if (values.size() < 2) {
    r.std = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  double ss = 0.0;
  for (double v : values) ss += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(values.size() - 1));
  return r;
}

}  // namespace xlt::eval
