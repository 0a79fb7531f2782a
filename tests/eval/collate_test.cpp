// Tests for the pieces under evaluation that need no model: dynamic-padding collate (right/left,
// multiple-of, token types, selected positions), label mapping by id2label name, and the
// sliding-window plan against hand-computed windows of HF's perplexity loop.
#include "xlt/eval/collate.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "xlt/core/error.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/perplexity.h"

using namespace xlt::eval;
using xlt::text::Encoding;

namespace {

Encoding enc(std::vector<int32_t> ids, std::vector<int32_t> types = {}) {
  Encoding e;
  e.ids = ids;
  e.attention_mask.assign(ids.size(), 1);
  e.token_type_ids = types.empty() ? std::vector<int32_t>(ids.size(), 0) : types;
  return e;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t r) {
  at::Tensor x = t[r].contiguous();
  return {x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + x.numel()};
}

}  // namespace

TEST(Collate, PadsSelectedRowsToTheirLongestOnTheRight) {
  std::vector<Encoding> all = {enc({101, 5, 102}), enc({101, 7, 8, 9, 102}, {0, 0, 0, 1, 1}),
                               enc({101, 102})};
  CollateOptions o;
  o.pad_id = 0;
  auto in = collate(all, {2, 0}, o);  // longest selected row has 3 tokens, not 5
  ASSERT_EQ(in.input_ids.sizes(), (at::IntArrayRef{2, 3}));
  EXPECT_EQ(in.input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(row(in.input_ids, 0), (std::vector<int64_t>{101, 102, 0}));
  EXPECT_EQ(row(in.input_ids, 1), (std::vector<int64_t>{101, 5, 102}));
  EXPECT_EQ(row(in.attention_mask, 0), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(row(in.attention_mask, 1), (std::vector<int64_t>{1, 1, 1}));

  auto full = collate(all, o);
  ASSERT_EQ(full.input_ids.sizes(), (at::IntArrayRef{3, 5}));
  EXPECT_EQ(row(full.token_type_ids, 1), (std::vector<int64_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(row(full.input_ids, 2), (std::vector<int64_t>{101, 102, 0, 0, 0}));
}

TEST(Collate, LeftPaddingMultipleOfAndNoTokenTypes) {
  std::vector<Encoding> all = {enc({2, 5, 6}), enc({2, 9})};
  CollateOptions o;
  o.pad_id = 1;
  o.side = xlt::text::PaddingSide::kLeft;
  o.pad_to_multiple_of = 4;
  o.token_type_ids = false;
  auto in = collate(all, o);
  ASSERT_EQ(in.input_ids.sizes(), (at::IntArrayRef{2, 4}));
  EXPECT_EQ(row(in.input_ids, 0), (std::vector<int64_t>{1, 2, 5, 6}));
  EXPECT_EQ(row(in.input_ids, 1), (std::vector<int64_t>{1, 1, 2, 9}));
  EXPECT_EQ(row(in.attention_mask, 1), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_FALSE(in.token_type_ids.defined());
}

TEST(Collate, RejectsEmptyBatchAndBadPositions) {
  std::vector<Encoding> all = {enc({1, 2})};
  EXPECT_THROW(collate(all, std::vector<int64_t>{}, {}), std::invalid_argument);
  EXPECT_THROW(collate(all, std::vector<int64_t>{1}, {}), std::invalid_argument);
  EXPECT_THROW(collate_labels({0}, {3}), std::invalid_argument);
  at::Tensor l = collate_labels({2, 0, 1}, {1, 2});
  EXPECT_EQ(row(l.unsqueeze(0), 0), (std::vector<int64_t>{0, 1}));
}

TEST(Collate, EncodingLengthsCountRealTokens) {
  Encoding padded = enc({5, 6, 0, 0});
  padded.attention_mask = {1, 1, 0, 0};
  EXPECT_EQ(encoding_lengths({enc({1, 2, 3}), padded}), (std::vector<int64_t>{3, 2}));
}

namespace {
xlt::io::ModelConfig config_with(std::map<int64_t, std::string> id2label) {
  xlt::io::ModelConfig c;
  c.num_labels = static_cast<int64_t>(id2label.size());
  c.id2label = std::move(id2label);
  return c;
}
}  // namespace

TEST(LabelMapping, ReordersByNameCaseInsensitively) {
  auto m = map_labels(config_with({{0, "CONTRADICTION"}, {1, "neutral"}, {2, "Entailment"}}),
                      xlt::data::LabelSet::nli());
  EXPECT_TRUE(m.by_name);
  EXPECT_FALSE(m.identity());
  EXPECT_EQ(m.model_to_data, (std::vector<int>{2, 1, 0}));
}

TEST(LabelMapping, GenericNamesMapIdentically) {
  auto m = map_labels(config_with({{0, "LABEL_0"}, {1, "LABEL_1"}, {2, "LABEL_2"}}),
                      xlt::data::LabelSet::nli());
  EXPECT_FALSE(m.by_name);
  EXPECT_EQ(m.model_to_data, (std::vector<int>{0, 1, 2}));
  auto same = map_labels(config_with({{0, "entailment"}, {1, "neutral"}, {2, "contradiction"}}),
                         xlt::data::LabelSet::nli());
  EXPECT_TRUE(same.by_name);
  EXPECT_TRUE(same.identity());
}

TEST(LabelMapping, RejectsUnknownNamesDuplicatesAndWrongCounts) {
  const auto nli = xlt::data::LabelSet::nli();
  EXPECT_THROW(
      map_labels(config_with({{0, "entailment"}, {1, "LABEL_1"}, {2, "contradiction"}}), nli),
      xlt::ConfigError);
  EXPECT_THROW(
      map_labels(config_with({{0, "entailment"}, {1, "entailment"}, {2, "contradiction"}}), nli),
      xlt::ConfigError);
  EXPECT_THROW(map_labels(config_with({{0, "yes"}, {1, "no"}}), nli), xlt::ConfigError);
}

TEST(SlidingWindows, MatchesHandComputedHfLoop) {
  // n = 10, max_length 4, stride 2: begins 0, 2, 4, 6; the last window reaches the end.
  // Targets: 1..3, then 4-5, 6-7, 8-9: every token but the first, exactly once.
  std::vector<Window> expect = {{0, 4, 1}, {2, 6, 4}, {4, 8, 6}, {6, 10, 8}};
  EXPECT_EQ(sliding_windows(10, 4, 2), expect);
  // Uneven tail: n = 9, max_length 4, stride 3: windows [0,4) [3,7) [6,9).
  expect = {{0, 4, 1}, {3, 7, 4}, {6, 9, 7}};
  EXPECT_EQ(sliding_windows(9, 4, 3), expect);
  // stride == max_length: disjoint windows; each window's first token has no context.
  expect = {{0, 3, 1}, {3, 6, 4}, {6, 7, 7}};
  EXPECT_EQ(sliding_windows(7, 3, 3), expect);
  // Shorter than one window.
  expect = {{0, 3, 1}};
  EXPECT_EQ(sliding_windows(3, 8, 4), expect);
  EXPECT_TRUE(sliding_windows(1, 8, 4).empty());
  EXPECT_THROW(sliding_windows(10, 4, 5), xlt::UsageError);
  EXPECT_THROW(sliding_windows(10, 4, 0), xlt::UsageError);
  EXPECT_THROW(sliding_windows(10, 1, 1), xlt::UsageError);
}

TEST(SlidingWindows, ScoresEveryTokenButTheFirstExactlyOnceWhenStrideBelowLength) {
  for (int64_t n : {2, 5, 17, 64}) {
    for (int64_t L : {2, 3, 8}) {
      for (int64_t S = 1; S < L; ++S) {
        std::vector<int> hits(static_cast<size_t>(n), 0);
        for (const auto& w : sliding_windows(n, L, S)) {
          ASSERT_LE(w.end - w.begin, L);
          ASSERT_GT(w.score_from, w.begin);
          for (int64_t t = w.score_from; t < w.end; ++t) ++hits[t];
        }
        EXPECT_EQ(hits[0], 0);
        for (int64_t t = 1; t < n; ++t) EXPECT_EQ(hits[t], 1) << n << " " << L << " " << S;
      }
    }
  }
}

TEST(JoinMode, ParsesNames) {
  EXPECT_EQ(parse_join_mode("stream"), JoinMode::kStream);
  EXPECT_EQ(parse_join_mode("lines"), JoinMode::kLines);
  EXPECT_THROW(parse_join_mode("concat"), xlt::UsageError);
}
