// Tests for batch planning: every position exactly once, length order, token budgets, order
// restoration, and seeded determinism of the length-grouped training order.
#include "xlt/data/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "xlt/data/random.h"

using namespace xlt::data;

namespace {
void expect_permutation(const std::vector<Batch>& batches, size_t n) {
  auto flat = flatten(batches);
  ASSERT_EQ(flat.size(), n);
  std::sort(flat.begin(), flat.end());
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(flat[i], static_cast<int64_t>(i));
}

std::vector<int64_t> random_lengths(size_t n, uint64_t seed) {
  Xoshiro256ss r(seed);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = 3 + static_cast<int64_t>(r.uniform_below(120));
  return v;
}
}  // namespace

TEST(LengthSortedBatches, LongestFirstStableAndComplete) {
  std::vector<int64_t> lengths = {5, 9, 5, 1, 9, 7};
  auto batches = length_sorted_batches(lengths, 4);
  ASSERT_EQ(batches.size(), 2u);
  // 9 (pos 1), 9 (pos 4), 7 (pos 5), 5 (pos 0) | 5 (pos 2), 1 (pos 3): ties keep input order.
  EXPECT_EQ(batches[0], (Batch{1, 4, 5, 0}));
  EXPECT_EQ(batches[1], (Batch{2, 3}));
  expect_permutation(batches, lengths.size());
}

TEST(LengthSortedBatches, TokenBudgetBoundsPaddedSize) {
  std::vector<int64_t> lengths = {100, 10, 10, 10, 10, 60, 60};
  // Budget 130: [100] alone (2*100 > 130), [60, 60]... 2*60=120 ok, 3*60 > 130; then the 10s.
  auto batches = length_sorted_batches(lengths, 8, 130);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0], (Batch{0}));
  EXPECT_EQ(batches[1], (Batch{5, 6}));
  EXPECT_EQ(batches[2], (Batch{1, 2, 3, 4}));
  // An example longer than the budget still gets its own batch.
  auto single = length_sorted_batches({500, 1}, 8, 100);
  EXPECT_EQ(single[0], (Batch{0}));
  EXPECT_THROW(length_sorted_batches(lengths, 0), std::invalid_argument);
}

// eval --no-sort: file order, with the budget applied to rows x the longest row so far (it was
// ignored: 60 rows x 23 tokens in one batch under a 100-token cap).
TEST(InputOrderBatches, KeepOrderAndBoundPaddedSize) {
  const std::vector<int64_t> lengths = {10, 30, 10, 10, 100, 5, 5, 5};
  // Budget 70: [10, 30] (3 x 30 = 90 > 70), [10, 10] (3 x 100 > 70), [100], [5, 5, 5].
  auto batches = input_order_batches(lengths, 8, 70);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[0], (Batch{0, 1}));
  EXPECT_EQ(batches[1], (Batch{2, 3}));
  EXPECT_EQ(batches[2], (Batch{4}));
  EXPECT_EQ(batches[3], (Batch{5, 6, 7}));
  EXPECT_EQ(input_order_batches(lengths, 3), (std::vector<Batch>{{0, 1, 2}, {3, 4, 5}, {6, 7}}));
  EXPECT_EQ(input_order_batches(lengths, 2, 1000).size(), 4u);
  const auto many = random_lengths(500, 9);
  const auto capped = input_order_batches(many, 64, 512);
  expect_permutation(capped, many.size());
  int64_t next = 0;
  for (const Batch& b : capped) {
    int64_t longest = 0;
    for (int64_t i : b) {
      EXPECT_EQ(i, next++);
      longest = std::max(longest, many[static_cast<size_t>(i)]);
    }
    EXPECT_TRUE(b.size() == 1 || static_cast<int64_t>(b.size()) * longest <= 512);
  }
  EXPECT_THROW(input_order_batches(lengths, 0), std::invalid_argument);
}

TEST(LengthSortedBatches, RestoreOrderPutsOutputsBack) {
  auto lengths = random_lengths(103, 1);
  auto batches = length_sorted_batches(lengths, 8);
  expect_permutation(batches, lengths.size());
  // "Run" each batch: the output for a position is its length, in batch order.
  std::vector<int64_t> outputs;
  for (const auto& b : batches)
    for (int64_t p : b) outputs.push_back(lengths[static_cast<size_t>(p)]);
  EXPECT_EQ(restore_order(batches, outputs), lengths);
  outputs.pop_back();
  EXPECT_THROW(restore_order(batches, outputs), std::invalid_argument);
}

TEST(LengthGroupedBatches, DeterministicCompleteAndGrouped) {
  auto lengths = random_lengths(1000, 2);
  auto a = length_grouped_batches(lengths, 16, 42);
  auto b = length_grouped_batches(lengths, 16, 42);
  EXPECT_EQ(a, b);
  expect_permutation(a, lengths.size());
  EXPECT_NE(a, length_grouped_batches(lengths, 16, 43));
  // mult = min(1000 / 64, 50) = 15 -> megabatches of 240: 4 of 240 + 1 of 40 -> 15*4 + 3 batches.
  EXPECT_EQ(a.size(), 63u);
  // The longest example of all leads the first batch.
  int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  EXPECT_EQ(lengths[static_cast<size_t>(a[0][0])], longest);
  // Within a batch lengths are sorted (longest first), and grouping keeps padding far below that
  // of random batches: compare the padded token counts.
  auto padded = [&](const std::vector<Batch>& batches) {
    int64_t total = 0;
    for (const auto& batch : batches) {
      for (size_t i = 1; i < batch.size(); ++i)
        EXPECT_GE(lengths[static_cast<size_t>(batch[i - 1])],
                  lengths[static_cast<size_t>(batch[i])]);
      total += static_cast<int64_t>(batch.size()) * lengths[static_cast<size_t>(batch[0])];
    }
    return total;
  };
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  Xoshiro256ss rng(3);
  shuffle(order, rng);
  std::vector<Batch> random_batches;
  for (size_t i = 0; i < order.size(); i += 16) {
    Batch batch(order.begin() + i, order.begin() + std::min(order.size(), i + 16));
    std::stable_sort(batch.begin(), batch.end(), [&](int64_t x, int64_t y) {
      return lengths[static_cast<size_t>(x)] > lengths[static_cast<size_t>(y)];
    });
    random_batches.push_back(batch);
  }
  EXPECT_LT(padded(a), padded(random_batches) * 3 / 4);
}

TEST(LengthGroupedBatches, SmallInputsAndDifferentEpochSeeds) {
  EXPECT_TRUE(length_grouped_batches({}, 4, 1).empty());
  auto one = length_grouped_batches({7}, 4, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], (Batch{0}));
  auto lengths = random_lengths(50, 4);
  auto e0 = length_grouped_batches(lengths, 8, derive_seed(1, 0));
  auto e1 = length_grouped_batches(lengths, 8, derive_seed(1, 1));
  expect_permutation(e0, 50);
  expect_permutation(e1, 50);
  EXPECT_NE(e0, e1);
}

TEST(TokenBudgetBatches, BudgetRowsOrderAndDeterminism) {
  auto lengths = random_lengths(1000, 5);
  lengths[17] = 600;  // longer than the budget: a batch of its own, placed first
  const int64_t budget = 512;
  auto a = token_budget_batches(lengths, budget, 42);
  EXPECT_EQ(a, token_budget_batches(lengths, budget, 42));
  EXPECT_NE(a, token_budget_batches(lengths, budget, 43));
  expect_permutation(a, lengths.size());
  EXPECT_EQ(a[0], (Batch{17}));
  int64_t padded = 0, real = 0;
  for (const auto& batch : a) {
    ASSERT_FALSE(batch.empty());
    const int64_t longest = lengths[static_cast<size_t>(batch[0])];
    for (size_t i = 0; i < batch.size(); ++i) {
      if (i > 0) {
        EXPECT_GE(lengths[static_cast<size_t>(batch[i - 1])],
                  lengths[static_cast<size_t>(batch[i])]);
      }
      real += lengths[static_cast<size_t>(batch[i])];
    }
    if (batch.size() > 1) {
      EXPECT_LE(static_cast<int64_t>(batch.size()) * longest, budget);
    }
    padded += static_cast<int64_t>(batch.size()) * longest;
  }
  // Grouping by length keeps the budget's padding small (random lengths 3..122 here).
  EXPECT_GT(static_cast<double>(real) / static_cast<double>(padded), 0.85);
  // Batches fill the budget: the mean padded size is well above half of it.
  EXPECT_GT(static_cast<double>(padded) / static_cast<double>(a.size()), 0.75 * budget);
}

TEST(TokenBudgetBatches, RowCapAndBadBudget) {
  std::vector<int64_t> lengths(100, 4);
  // A budget of 400 holds 100 rows of 4; max_rows caps them at 8.
  auto a = token_budget_batches(lengths, 400, 1, /*max_rows=*/8);
  expect_permutation(a, lengths.size());
  for (const auto& batch : a) EXPECT_LE(batch.size(), 8u);
  // Megabatches of clamp(100 / (4 x 8), 1, 50) x 8 = 24 rows: 4 of 24 (3 batches each) + 1 of 4.
  EXPECT_EQ(a.size(), 13u);
  EXPECT_TRUE(token_budget_batches({}, 10, 1).empty());
  EXPECT_THROW(token_budget_batches(lengths, 0, 1), std::invalid_argument);
}
