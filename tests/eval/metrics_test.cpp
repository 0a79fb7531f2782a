// Tests for the evaluation statistics on hand-made predictions with hand-computed answers
// (accuracy, confusion, per-class P/R/F1, macro-F1 as scikit-learn defines it, chance), the
// percentile bootstrap (pinned against an independent Python transcription of the documented
// procedure, reproducible from its seed, close to the normal approximation), transfer gaps and
// mean/std across seeds.
#include "xlt/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "xlt/core/error.h"
#include "xlt/data/random.h"

using namespace xlt::eval;

namespace {
// gold/pred with 7 of 10 correct. Confusion (rows gold, cols pred):
//   [2 1 0]   class 0: TP 2, predicted 3, support 3 -> P = R = F1 = 2/3
//   [0 2 1]   class 1: TP 2, predicted 3, support 3 -> P = R = F1 = 2/3
//   [1 0 3]   class 2: TP 3, predicted 4, support 4 -> P = R = F1 = 3/4
const std::vector<int> kGold = {0, 0, 0, 1, 1, 2, 2, 2, 2, 1};
const std::vector<int> kPred = {0, 0, 1, 1, 2, 2, 2, 0, 2, 1};
constexpr double kExact = 1e-12;  // closed-form ratios of small integers

std::vector<uint8_t> bits(std::initializer_list<int> v) {
  return std::vector<uint8_t>(v.begin(), v.end());
}
}  // namespace

TEST(Metrics, AccuracyConfusionAndPerClassByHand) {
  EXPECT_NEAR(accuracy(kGold, kPred), 0.7, kExact);
  auto cm = confusion_matrix(kGold, kPred, 3);
  EXPECT_EQ(cm, (ConfusionMatrix{{2, 1, 0}, {0, 2, 1}, {1, 0, 3}}));
  auto pc = per_class_metrics(cm, {"entailment", "neutral", "contradiction"});
  ASSERT_EQ(pc.size(), 3u);
  EXPECT_EQ(pc[2].name, "contradiction");
  EXPECT_NEAR(pc[0].precision, 2.0 / 3, kExact);
  EXPECT_NEAR(pc[1].recall, 2.0 / 3, kExact);
  EXPECT_NEAR(pc[2].f1, 0.75, kExact);
  EXPECT_EQ(pc[2].support, 4);
  EXPECT_EQ(pc[2].predicted, 4);
  EXPECT_NEAR(macro_f1(cm), 25.0 / 36, kExact);  // (2/3 + 2/3 + 3/4) / 3
  EXPECT_NEAR(chance_level(kGold, 3), 0.4, kExact);
}

TEST(Metrics, UnequalPrecisionAndRecall) {
  // cm = [[2,1,1],[0,2,0],[0,1,1]]: class 0 P 1, R 1/2 -> F1 2/3; class 1 P 1/2, R 1 -> 2/3;
  // class 2 P 1/2, R 1/2 -> 1/2; macro (2/3 + 2/3 + 1/2) / 3 = 11/18.
  std::vector<int> gold = {0, 0, 0, 0, 1, 1, 2, 2};
  std::vector<int> pred = {0, 0, 1, 2, 1, 1, 1, 2};
  auto cm = confusion_matrix(gold, pred, 3);
  auto pc = per_class_metrics(cm, {"a", "b", "c"});
  EXPECT_NEAR(pc[0].precision, 1.0, kExact);
  EXPECT_NEAR(pc[0].recall, 0.5, kExact);
  EXPECT_NEAR(pc[0].f1, 2.0 / 3, kExact);
  EXPECT_NEAR(pc[1].precision, 0.5, kExact);
  EXPECT_NEAR(pc[1].recall, 1.0, kExact);
  EXPECT_NEAR(macro_f1(cm), 11.0 / 18, kExact);
  EXPECT_NEAR(accuracy(gold, pred), 5.0 / 8, kExact);
  EXPECT_NEAR(chance_level(gold, 3), 0.5, kExact);
}

TEST(Metrics, MacroF1SkipsClassesAbsentFromGoldAndPred) {
  // Class 2 never occurs: sklearn's macro average is over {0, 1} -> (2/3 + 2/3) / 2.
  auto cm = confusion_matrix({0, 0, 1}, {0, 1, 1}, 3);
  EXPECT_NEAR(macro_f1(cm), 2.0 / 3, kExact);
  // A class that is predicted but never gold counts with F1 0: (2/3 + 0) / 2.
  cm = confusion_matrix({0, 0}, {0, 2}, 3);
  EXPECT_NEAR(macro_f1(cm), 1.0 / 3, kExact);
  auto pc = per_class_metrics(cm, {"a", "b", "c"});
  EXPECT_EQ(pc[2].precision, 0.0);
  EXPECT_EQ(pc[1].f1, 0.0);
}

TEST(Metrics, BadInputsThrowTypedErrors) {
  EXPECT_THROW(accuracy({0, 1}, {0}), xlt::Error);
  EXPECT_THROW(confusion_matrix({0, -1}, {0, 1}, 3), xlt::DataError);  // unlabelled gold
  EXPECT_THROW(confusion_matrix({0, 3}, {0, 1}, 3), xlt::Error);
  EXPECT_THROW(confusion_matrix({0, 1}, {0, 5}, 3), xlt::Error);
  EXPECT_THROW(accuracy({}, {}), xlt::Error);
  EXPECT_THROW(transfer_gap(bits({1, 0}), bits({1}), true, {}), xlt::Error);
}

TEST(Quantile, LinearInterpolationLikeNumpy) {
  EXPECT_NEAR(quantile_sorted({1, 2, 3, 4}, 0.25), 1.75, kExact);  // np.quantile default
  EXPECT_NEAR(quantile_sorted({1, 2, 3, 4}, 1.0), 4.0, kExact);
  EXPECT_NEAR(quantile_sorted({1, 2, 3, 4}, 0.0), 1.0, kExact);
  EXPECT_NEAR(quantile_sorted({10}, 0.975), 10.0, kExact);
}

TEST(Bootstrap, PinnedAgainstIndependentTranscription) {
  // 24 of 37 correct (every third item wrong); B = 1000, seed 11. Expected values from a Python
  // transcription of splitmix64/xoshiro256**, derive_seed and the percentile rule in metrics.h.
  std::vector<uint8_t> c;
  for (int i = 0; i < 37; ++i) c.push_back((i * 7) % 3 != 0);
  auto ci = bootstrap_accuracy_ci(c, {1000, 11});
  EXPECT_NEAR(ci.low, 18.0 / 37, kExact);
  EXPECT_NEAR(ci.high, 29.0 / 37, kExact);
  // The generic form with a mean statistic uses the same streams: identical interval.
  auto generic = bootstrap_ci(37,
                              [&](const std::vector<int64_t>& idx) {
                                double s = 0;
                                for (auto i : idx) s += c[static_cast<size_t>(i)];
                                return s / static_cast<double>(idx.size());
                              },
                              {1000, 11});
  EXPECT_EQ(generic.low, ci.low);
  EXPECT_EQ(generic.high, ci.high);
}

TEST(Bootstrap, ReproducibleContainsPointAndMatchesNormalApproximation) {
  // 1000 items, 700 correct in a seeded random order.
  std::vector<uint8_t> c(1000, 0);
  for (int i = 0; i < 700; ++i) c[static_cast<size_t>(i)] = 1;
  xlt::data::Xoshiro256ss rng(5);
  xlt::data::shuffle(c, rng);
  auto a = bootstrap_accuracy_ci(c, {1000, 42});
  auto b = bootstrap_accuracy_ci(c, {1000, 42});
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  auto other = bootstrap_accuracy_ci(c, {1000, 43});
  EXPECT_TRUE(other.low != a.low || other.high != a.high);
  EXPECT_LT(a.low, 0.7);
  EXPECT_GT(a.high, 0.7);
  // Normal approximation: 0.7 -+ 1.96 sqrt(0.7 * 0.3 / 1000) = 0.7 -+ 0.0284. With B = 1000 the
  // percentile endpoints scatter by about 0.004 (Monte Carlo error), so allow 0.008.
  EXPECT_NEAR(a.low, 0.7 - 0.0284, 0.008);
  EXPECT_NEAR(a.high, 0.7 + 0.0284, 0.008);
  // Degenerate sets give degenerate intervals.
  auto all = bootstrap_accuracy_ci(std::vector<uint8_t>(50, 1), {1000, 1});
  EXPECT_EQ(all.low, 1.0);
  EXPECT_EQ(all.high, 1.0);
  EXPECT_THROW(bootstrap_accuracy_ci(c, {0, 1}), xlt::Error);
}

// Values from Python: statistics.NormalDist().inv_cdf((1 + level) / 2) in the Wilson formula.
TEST(Metrics, WilsonIntervalMatchesTheFormula) {
  auto a = wilson_interval(20, 20, 0.95);
  EXPECT_NEAR(a.low, 0.8388748419471808, 1e-12);
  EXPECT_EQ(a.high, 1.0);
  auto b = wilson_interval(0, 8, 0.95);
  EXPECT_EQ(b.low, 0.0);
  EXPECT_NEAR(b.high, 0.3244075648838801, 1e-12);
  auto c = wilson_interval(7, 10, 0.95);
  EXPECT_NEAR(c.low, 0.39677814746114537, 1e-12);
  EXPECT_NEAR(c.high, 0.8922087325936989, 1e-12);
  EXPECT_NEAR(wilson_interval(3, 3, 0.90).low, 0.5258044258424874, 1e-12);
  EXPECT_THROW(wilson_interval(0, 0, 0.95), xlt::Error);
  EXPECT_THROW(wilson_interval(4, 3, 0.95), xlt::Error);
}

// The reported accuracy interval keeps a width when the bootstrap has none (all right or all
// wrong), and is the bootstrap's otherwise.
TEST(Metrics, AccuracyIntervalFallsBackToWilsonWhenTheBootstrapCollapses) {
  const BootstrapOptions o{1000, 3};
  auto all = accuracy_ci(std::vector<uint8_t>(20, 1), o);
  EXPECT_EQ(all.method, IntervalMethod::kWilson);
  EXPECT_NEAR(all.ci.low, 0.8388748419471808, 1e-12);
  auto none = accuracy_ci(std::vector<uint8_t>(8, 0), o);
  EXPECT_EQ(none.method, IntervalMethod::kWilson);
  EXPECT_NEAR(none.ci.high, 0.3244075648838801, 1e-12);
  std::vector<uint8_t> mixed(20, 1);
  mixed[3] = 0;
  auto m = accuracy_ci(mixed, o);
  EXPECT_EQ(m.method, IntervalMethod::kPercentileBootstrap);
  const Interval boot = bootstrap_accuracy_ci(mixed, o);
  EXPECT_EQ(m.ci.low, boot.low);
  EXPECT_EQ(m.ci.high, boot.high);
  EXPECT_STREQ(interval_method_name(IntervalMethod::kWilson), "wilson");
  EXPECT_STREQ(interval_method_name(IntervalMethod::kPercentileBootstrap), "percentile");
}

TEST(TransferGap, PinnedPairedAndUnpaired) {
  // Source: 27/37 correct; target flips every 6th item: 28/37. Gap = -1/37.
  std::vector<uint8_t> src, tgt;
  for (int i = 0; i < 37; ++i) src.push_back((i * 5) % 4 != 0);
  for (int i = 0; i < 37; ++i) tgt.push_back(i % 6 ? src[i] : 1 - src[i]);
  auto paired = transfer_gap(src, tgt, true, {1000, 11});
  EXPECT_TRUE(paired.paired);
  EXPECT_NEAR(paired.gap, -1.0 / 37, kExact);
  EXPECT_NEAR(paired.ci.low, -6.0 / 37, kExact);
  EXPECT_NEAR(paired.ci.high, 4.0 / 37, kExact);
  auto unpaired = transfer_gap(src, tgt, false, {1000, 11});
  EXPECT_FALSE(unpaired.paired);
  EXPECT_NEAR(unpaired.ci.low, -8.0 / 37, kExact);
  EXPECT_NEAR(unpaired.ci.high, 6.0 / 37, kExact);
}

TEST(TransferGap, PairingRemovesSharedItemVariance) {
  // Parallel sets whose per-item correctness agrees on 90% of items: the paired interval must be
  // much narrower than the unpaired one (SE of the mean difference vs. of two independent means).
  xlt::data::Xoshiro256ss rng(8);
  std::vector<uint8_t> src(2000), tgt(2000);
  for (size_t i = 0; i < src.size(); ++i) {
    src[i] = rng.uniform01() < 0.8;
    tgt[i] = rng.uniform01() < 0.1 ? 1 - src[i] : src[i];
  }
  auto p = transfer_gap(src, tgt, true, {1000, 3});
  auto u = transfer_gap(src, tgt, false, {1000, 3});
  EXPECT_EQ(p.gap, u.gap);
  EXPECT_LT(p.ci.low, p.gap);
  EXPECT_GT(p.ci.high, p.gap);
  EXPECT_LT(p.ci.high - p.ci.low, 0.6 * (u.ci.high - u.ci.low));
  // Identical results: zero gap, zero-width paired interval.
  auto same = transfer_gap(src, src, true, {1000, 3});
  EXPECT_EQ(same.gap, 0.0);
  EXPECT_EQ(same.ci.low, 0.0);
  EXPECT_EQ(same.ci.high, 0.0);
}

TEST(MeanStd, SampleStandardDeviation) {
  auto r = mean_std({0.70, 0.72, 0.74});
  EXPECT_NEAR(r.mean, 0.72, kExact);
  EXPECT_NEAR(r.std, 0.02, kExact);  // sqrt((0.0004 + 0 + 0.0004) / 2)
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(std::isnan(mean_std({0.5}).std));
  EXPECT_EQ(mean_std({0.5}).mean, 0.5);
  EXPECT_TRUE(std::isnan(mean_std({}).mean));
}
