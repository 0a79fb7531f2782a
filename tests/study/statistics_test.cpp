// Tests of the study's statistics and distance table: average ranks and Spearman's rho against
// hand-computed values (scipy.stats.rankdata / spearmanr give the same), exact permutation
// p-values counted by hand, and the compiled distance table against data/linguistic_distance.tsv.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/study/distance.h"
#include "xlt/study/statistics.h"

namespace xlt::study {
namespace {

TEST(Spearman, AverageRanksWithTies) {
  EXPECT_EQ(average_ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
  EXPECT_EQ(average_ranks({1, 1, 1}), (std::vector<double>{2, 2, 2}));
  EXPECT_TRUE(average_ranks({}).empty());
}

TEST(Spearman, RhoByHand) {
  // x ranks 1..5, y ranks 2,1,4,3,5: d^2 = 1+1+1+1+0 = 4, rho = 1 - 6*4/(5*24) = 0.8.
  const auto r = spearman({1, 2, 3, 4, 5}, {20, 10, 40, 30, 50});
  EXPECT_NEAR(r.rho, 0.8, 1e-12);
  EXPECT_EQ(r.n, 5);
  EXPECT_TRUE(r.exact);
  EXPECT_TRUE(r.meaningful);
  // Exact two-sided p: rho >= 0.8 <=> sum d^2 <= 4: the identity, 4 adjacent swaps and 3 pairs
  // of disjoint adjacent swaps = 8 permutations (the tabulated one-sided 8/120 = 0.0667); as
  // many reach rho <= -0.8, so p = 16/120.
  EXPECT_NEAR(r.p_value, 16.0 / 120.0, 1e-12);
  // Monotone but nonlinear is still rho = 1.
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {1, 4, 9, 100}).rho, 1.0, 1e-12);
}

TEST(Spearman, SmallSamplesAreFlaggedAndPValuesExact) {
  // n = 3, perfect order: permutations with |rho| = 1 are the identity and its reverse: 2/6.
  const auto r3 = spearman({0.18, 0.19, 0.38}, {0.05, 0.10, 0.20});
  EXPECT_NEAR(r3.rho, 1.0, 1e-12);
  EXPECT_NEAR(r3.p_value, 1.0 / 3.0, 1e-12);
  EXPECT_FALSE(r3.meaningful);
  EXPECT_NE(r3.note.find("too few"), std::string::npos);
  EXPECT_NE(r3.note.find("2/3! = 0.33"), std::string::npos) << r3.note;
  // n = 4, perfect order: 2/24, the smallest p 4 languages can give, above 0.05: not meaningful.
  const auto r4 = spearman({1, 2, 3, 4}, {4, 3, 2, 1});
  EXPECT_NEAR(r4.rho, -1.0, 1e-12);
  EXPECT_NEAR(r4.p_value, 2.0 / 24.0, 1e-12);
  EXPECT_FALSE(r4.meaningful);
  EXPECT_NE(r4.note.find("2/4! = 0.083"), std::string::npos) << r4.note;
  // n = 5, perfect order: 2/120 < 0.05, the first size at which significance is possible.
  const auto r5 = spearman({1, 2, 3, 4, 5}, {1, 2, 3, 4, 5});
  EXPECT_NEAR(r5.p_value, 2.0 / 120.0, 1e-12);
  EXPECT_TRUE(r5.meaningful);
  EXPECT_NE(r5.note.find("Significant"), std::string::npos) << r5.note;
  // Ties: y = (1, 1, 2): ranks (1.5, 1.5, 3); rho with x ranks (1, 2, 3) = sqrt(3)/2.
  const auto rt = spearman({1, 2, 3}, {1, 1, 2});
  EXPECT_NEAR(rt.rho, std::sqrt(3.0) / 2.0, 1e-12);
  // Distinct arrangements of (1.5, 1.5, 3): 3, of which 2 reach |rho| = sqrt(3)/2.
  EXPECT_NEAR(rt.p_value, 2.0 / 3.0, 1e-12);
  // A constant variable has no ranking.
  EXPECT_TRUE(std::isnan(spearman({1, 2, 3}, {5, 5, 5}).rho));
}

TEST(Spearman, MonteCarloForLargerSetsIsSeeded) {
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<double> y = {2, 1, 4, 3, 6, 5, 8, 7, 10, 9};
  const auto a = spearman(x, y, 1), b = spearman(x, y, 1);
  EXPECT_FALSE(a.exact);
  EXPECT_EQ(a.p_value, b.p_value);
  // rho = 1 - 6*10/(10*99) = 0.93939...; the exact p is tiny (< 0.001).
  EXPECT_NEAR(a.rho, 1.0 - 60.0 / 990.0, 1e-12);
  EXPECT_LT(a.p_value, 0.001);
  // A perfect ordering of 14: no random ordering of 200,000 reaches it (the exact p is 2/14!),
  // and the estimate is (0 + 1) / (200,000 + 1), not 0.
  std::vector<double> x14(14);
  for (int i = 0; i < 14; ++i) x14[i] = i;
  const auto c = spearman(x14, x14, 7);
  EXPECT_FALSE(c.exact);
  EXPECT_DOUBLE_EQ(c.p_value, 1.0 / 200001.0);
}

TEST(Spearman, BootstrapIntervalOverLanguages) {
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<double> y = x, rev(x.rbegin(), x.rend());
  // Monotone data: every resample with two distinct points has rho = 1 (or -1 reversed).
  const Interval up = spearman_bootstrap_ci(x, y, 500, 3);
  EXPECT_EQ(up.low, 1.0);
  EXPECT_EQ(up.high, 1.0);
  EXPECT_GT(up.used, 490);  // all-equal resamples (10 / 10^10 chance each) are dropped
  const Interval down = spearman_bootstrap_ci(x, rev, 500, 3);
  EXPECT_EQ(down.low, -1.0);
  EXPECT_EQ(down.high, -1.0);
  // Noisy data: the interval contains rho, is seeded, and fewer than 3 pairs give none.
  y = {2, 1, 4, 3, 6, 5, 8, 7, 10, 9};
  const Interval a = spearman_bootstrap_ci(x, y, 1000, 5), b = spearman_bootstrap_ci(x, y, 1000, 5);
  const double rho = spearman(x, y).rho;
  EXPECT_LT(a.low, rho);
  EXPECT_GE(a.high, rho);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_TRUE(std::isnan(spearman_bootstrap_ci({1, 2}, {1, 2}, 100, 1).low));
  // Nor do 3 or 4 (resamples of 3 give only +-1 or the observed rho: a point, not an interval).
  const Interval three = spearman_bootstrap_ci({0.1, 0.2, 0.4}, {3, 2, 1}, 100, 1);
  EXPECT_TRUE(std::isnan(three.low) && std::isnan(three.high));
  EXPECT_EQ(three.used, 0);
  EXPECT_TRUE(std::isnan(spearman_bootstrap_ci({1, 2, 3, 4}, {1, 3, 2, 4}, 100, 1).low));
  EXPECT_FALSE(std::isnan(spearman_bootstrap_ci({1, 2, 3, 4, 5}, {1, 3, 2, 5, 4}, 100, 1).low));
}

TEST(PairedGap, DifferenceOfGapsWithPairedBootstrap) {
  // A: source right on all 4 rows, target on rows 0 and 2 -> gap 0.5. B: source and target
  // agree row by row -> gap 0 under every resample, so the difference is A's gap: 1 minus the
  // resampled share of rows 0 and 2, between 0 and 1.
  const std::vector<SeedRows> a = {{{1, 1, 1, 1}, {1, 0, 1, 0}}};
  const std::vector<SeedRows> b = {{{1, 1, 0, 0}, {1, 1, 0, 0}}};
  const PairedDifference d = paired_gap_difference(a, b, 2000, 11);
  EXPECT_DOUBLE_EQ(d.gap_a, 0.5);
  EXPECT_DOUBLE_EQ(d.gap_b, 0.0);
  EXPECT_DOUBLE_EQ(d.difference, 0.5);
  EXPECT_EQ(d.rows, 4);
  EXPECT_GE(d.low, 0.0);
  EXPECT_LE(d.high, 1.0);
  EXPECT_LT(d.low, 0.5);
  EXPECT_GT(d.high, 0.5);
  // The same model against itself: no difference under any resample.
  const PairedDifference same = paired_gap_difference(a, a, 200, 1);
  EXPECT_EQ(same.difference, 0.0);
  EXPECT_EQ(same.low, 0.0);
  EXPECT_EQ(same.high, 0.0);
  // Several seeds: the mean of their gaps.
  const std::vector<SeedRows> two = {{{1, 1, 1, 1}, {1, 0, 1, 0}}, {{1, 1, 1, 1}, {1, 1, 1, 1}}};
  EXPECT_DOUBLE_EQ(mean_gap(two), 0.25);
  EXPECT_THROW(paired_gap_difference(a, {{{1, 1}, {1, 1}}}, 10, 1), Error);
}

TEST(DistanceTable, BuiltinMatchesShippedTsv) {
  const std::string text = read_file(test::source_dir() / "data" / "linguistic_distance.tsv");
  std::istringstream in(text);
  std::string line, body;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') body += line + "\n";
  }
  EXPECT_EQ(body, builtin_distance_tsv());
  const auto syn = builtin_distance_table("syntactic");
  EXPECT_EQ(syn.values.size(), 15u);  // all XNLI languages
  EXPECT_DOUBLE_EQ(syn.values.at("en"), 0.0);
  EXPECT_DOUBLE_EQ(syn.values.at("hi"), 0.3838);
  const auto gen = builtin_distance_table("genetic");
  EXPECT_DOUBLE_EQ(gen.values.at("de"), 1.0);
  EXPECT_DOUBLE_EQ(gen.values.at("es"), 2.0);
  EXPECT_DOUBLE_EQ(gen.values.at("zh"), 3.0);
  // Geographic: great-circle distance / half the circumference from the fitted locations
  // (en 52.976 N 0.948 W, fr 47.976 N 2.046 E: 5.35 degrees of arc / 180 = 0.0297).
  const auto geo = builtin_distance_table("geographic");
  EXPECT_EQ(geo.values.size(), 15u);
  EXPECT_DOUBLE_EQ(geo.values.at("fr"), 0.0297);
  EXPECT_DOUBLE_EQ(geo.values.at("zh"), 0.4021);
  EXPECT_THROW(builtin_distance_table("lexical"), ConfigError);
  // The shipped file reads back through the user-table reader with the same numbers.
  const auto from_file =
      read_distance_tsv(test::source_dir() / "data" / "linguistic_distance.tsv", "syntactic", "en");
  EXPECT_EQ(from_file.values, syn.values);
}

TEST(DistanceTable, UserTablesAreChecked) {
  test::TempDir tmp;
  test::write_text(tmp / "d.tsv", "# my distances\nlang\tlexical\nes\t0.3\nhi\tfar\n");
  EXPECT_THROW(read_distance_tsv(tmp / "d.tsv", "lexical", "en"), DataError);
  test::write_text(tmp / "d.tsv", "lang\tlexical\nes\t0.3\nhi\t0.9\n");
  const auto t = read_distance_tsv(tmp / "d.tsv", "lexical", "en");
  EXPECT_DOUBLE_EQ(t.values.at("hi"), 0.9);
  EXPECT_THROW(read_distance_tsv(tmp / "d.tsv", "syntactic", "en"), ConfigError);
}

}  // namespace
}  // namespace xlt::study
