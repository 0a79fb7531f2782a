// Perplexity tests on the tiny XGLM fixture (HF reference logits and losses) and on a hand-checked
// sliding-window case: the windowed total must equal the sum of per-token NLLs computed
// independently, one prefix forward per token, with the context each window gives it.
#include "xlt/eval/perplexity.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/models/tensor_io.h"
#include "xlt/text/tokenizer.h"

using namespace xlt::eval;
namespace fs = std::filesystem;

namespace {

fs::path xglm_dir() {
  return xlt::test::fixtures_dir() / "xglm_tiny";
}

// -log softmax(logits[row])[target], in double, from a reference (or independently computed)
// logits tensor.
double nll_from_logits(const at::Tensor& logits_row, int64_t target) {
  at::Tensor l = logits_row.to(at::kDouble);
  return (at::logsumexp(l, {0}) - l[target]).item<double>();
}

// Sum of NLL at labels' positions (standard shift: labels[b,t] predicted from t - 1), computed
// from reference logits.
double reference_sum(const at::Tensor& logits, const at::Tensor& labels, int64_t* count) {
  double s = 0;
  *count = 0;
  for (int64_t b = 0; b < labels.size(0); ++b) {
    for (int64_t t = 1; t < labels.size(1); ++t) {
      const int64_t y = labels[b][t].item<int64_t>();
      if (y == -100) continue;
      s += nll_from_logits(logits[b][t - 1], y);
      ++*count;
    }
  }
  return s;
}

}  // namespace

TEST(Perplexity, ScoreTokensMatchesHfLogitsAndLossOnXglmFixture) {
  XLT_REQUIRE_PATH(xglm_dir() / "ref.safetensors");
  auto model = xlt::models::load_model(xglm_dir());
  auto ref = xlt::models::read_tensors(xglm_dir() / "ref.safetensors");
  const at::Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask");
  const at::Tensor logits = ref.at("logits");
  const int64_t pad = 1, B = ids.size(0), T = ids.size(1);
  for (const char* which : {"labels", "labels_masked"}) {
    SCOPED_TRACE(which);
    const at::Tensor labels = ref.at(which);
    TokenNll s = score_tokens(*model, ids, mask, labels);
    int64_t count = 0;
    const double expect = reference_sum(logits, labels, &count);
    EXPECT_EQ(s.count, count);
    // Per position against HF's logits. XGLM's residual stream reaches |h| ~ 20, so logits carry
    // ~1e-5 relative error (fixtures/README.md); NLLs of ~7 nats get 1e-4 absolute.
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 1; t < T; ++t) {
        const int64_t y = labels[b][t].item<int64_t>();
        const double want = y == -100 ? 0.0 : nll_from_logits(logits[b][t - 1], y);
        EXPECT_NEAR(s.nll[b][t].item<double>(), want, 1e-4) << b << "," << t;
      }
    }
    EXPECT_NEAR(s.total, expect, 1e-5 * std::abs(expect) + 1e-4);

    // HF's own loss adds one target per row after the last position (pad_token_id, counted);
    // removing that term from HF's mean x count must leave exactly our standard-shift total.
    const std::string loss_key = std::string(which) == "labels" ? "loss" : "loss_masked";
    const double hf_loss = ref.at(loss_key).item<double>();
    double pad_terms = 0;
    for (int64_t b = 0; b < B; ++b) pad_terms += nll_from_logits(logits[b][T - 1], pad);
    const double hf_total = hf_loss * static_cast<double>(count + B);
    EXPECT_NEAR(s.total, hf_total - pad_terms, 1e-5 * std::abs(hf_total) + 1e-4);
  }
}

TEST(Perplexity, SlidingWindowTotalEqualsIndependentPerTokenSum) {
  XLT_REQUIRE_PATH(xglm_dir() / "model.safetensors");
  auto model = xlt::models::load_model(xglm_dir());
  // 23 tokens, max_length 8, stride 3: windows begin at 0, 3, 6, 9, 12, 15 and score
  // [1,8) [8,11) [11,14) [14,17) [17,20) [20,23): token t's context starts at ctx(t).
  std::vector<int64_t> ids(23);
  for (int64_t i = 0; i < 23; ++i) ids[i] = 3 + (i * 37 + 11) % 997;
  ids[0] = 2;  // </s>, as the XGLM tokenizer starts a text
  auto ctx = [](int64_t t) { return t < 8 ? 0 : 3 * ((t - 8) / 3 + 1); };

  double expect = 0;
  {
    c10::InferenceMode guard;
    for (int64_t t = 1; t < 23; ++t) {
      std::vector<int64_t> prefix(ids.begin() + ctx(t), ids.begin() + t);
      xlt::models::ModelInputs in;
      in.input_ids = at::tensor(prefix, at::kLong).unsqueeze(0);
      at::Tensor logits = model->forward(in).logits;  // full [1, len, V] path
      expect += nll_from_logits(logits[0][-1], ids[t]);
    }
  }
  PerplexityOptions o;
  o.max_length = 8;
  o.stride = 3;
  o.progress = false;
  for (int64_t batch : {1, 4}) {
    o.batch_size = batch;
    PerplexityResult r = sequences_perplexity(*model, {ids}, 1, o);
    EXPECT_EQ(r.windows, 6);
    EXPECT_EQ(r.scored_tokens, 22);
    EXPECT_EQ(r.tokens, 23);
    // float32 forward passes of different lengths: 1e-5 relative on a ~150-nat total.
    EXPECT_NEAR(r.nll, expect, 1e-5 * expect) << "batch " << batch;
    EXPECT_NEAR(r.perplexity, std::exp(expect / 22), 1e-5 * r.perplexity);
  }
  // One window covering everything = a single full-context forward.
  o.max_length = 23;
  o.stride = 23;
  double full = 0;
  {
    c10::InferenceMode guard;
    xlt::models::ModelInputs in;
    in.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
    at::Tensor logits = model->forward(in).logits;
    for (int64_t t = 1; t < 23; ++t) full += nll_from_logits(logits[0][t - 1], ids[t]);
  }
  EXPECT_NEAR(sequences_perplexity(*model, {ids}, 1, o).nll, full, 1e-5 * full);
}

TEST(Perplexity, RejectsEncodersAndTooLongWindows) {
  XLT_REQUIRE_PATH(xglm_dir() / "model.safetensors");
  auto model = xlt::models::load_model(xglm_dir());
  PerplexityOptions o;
  o.max_length = 65;  // max_position_embeddings is 64
  o.progress = false;
  EXPECT_THROW(sequences_perplexity(*model, {{2, 5, 6}}, 1, o), xlt::UsageError);
  XLT_REQUIRE_PATH(xlt::test::fixtures_dir() / "bert_tiny" / "model.safetensors");
  auto bert = xlt::models::load_model(xlt::test::fixtures_dir() / "bert_tiny");
  EXPECT_THROW(sequences_perplexity(*bert, {{2, 5, 6}}, 0, {}), xlt::ConfigError);
}

// A tiny XGLM over the fixture's SentencePiece BPE vocabulary, so real text can be scored.
class TextPerplexity : public ::testing::Test {
 protected:
  void SetUp() override {
    spm_ = xlt::test::fixtures_dir() / "spm" / "xglm_bpe";
    XLT_REQUIRE_PATH(spm_ / "sentencepiece.bpe.model");
    tok_ = xlt::text::load_tokenizer(spm_);
    auto c = xlt::io::ModelConfig::load(xglm_dir() / "config.json");
    c.vocab_size = static_cast<int64_t>(tok_->vocab_size());
    model_ = xlt::models::create_model(c, 7);
  }
  fs::path spm_;
  std::unique_ptr<xlt::text::Tokenizer> tok_;
  std::unique_ptr<xlt::models::Model> model_;
};

TEST_F(TextPerplexity, StreamAndLineModesCountTokensBytesAndCharacters) {
  // Bytes / chars per line: 12/12, 25/24 ("Ü" is 2 bytes), 15/11 ("日本" is 6 bytes).
  const std::vector<std::string> lines = {"Hello world.", "", "Übung macht den Meister.\r", "  ",
                                          "日本 is here."};
  const int64_t text_bytes = 12 + 25 + 15, text_chars = 12 + 24 + 11;
  PerplexityOptions o;
  o.max_length = 16;
  o.stride = 8;
  o.progress = false;

  std::vector<std::vector<int64_t>> per_line;
  std::vector<int64_t> stream;
  for (const char* l : {"Hello world.", "Übung macht den Meister.", "日本 is here."}) {
    auto ids = tok_->encode(l).ids;
    ASSERT_EQ(ids.front(), 2);  // </s> starts every XGLM text
    per_line.emplace_back(ids.begin(), ids.end());
    stream.insert(stream.end(), ids.begin(), ids.end());
  }

  o.join = JoinMode::kStream;
  PerplexityResult s = text_perplexity(*model_, *tok_, lines, o);
  EXPECT_EQ(s.lines, 3);
  EXPECT_EQ(s.blank_lines, 2);
  EXPECT_EQ(s.bytes, text_bytes + 2);  // two newlines, each scored as a </s>
  EXPECT_EQ(s.chars, text_chars + 2);
  EXPECT_EQ(s.tokens, static_cast<int64_t>(stream.size()));
  EXPECT_EQ(s.scored_tokens, static_cast<int64_t>(stream.size()) - 1);
  const PerplexityResult s_ref = sequences_perplexity(*model_, {stream}, 1, o);
  EXPECT_DOUBLE_EQ(s.nll, s_ref.nll);
  EXPECT_NEAR(s.bits_per_byte, s.nll / std::log(2.0) / (text_bytes + 2), 1e-12);
  EXPECT_NEAR(s.bits_per_char, s.nll / std::log(2.0) / (text_chars + 2), 1e-12);
  EXPECT_NEAR(s.perplexity, std::exp(s.nll / s.scored_tokens), 1e-9 * s.perplexity);

  o.join = JoinMode::kLines;
  PerplexityResult l = text_perplexity(*model_, *tok_, lines, o);
  EXPECT_EQ(l.bytes, text_bytes);
  EXPECT_EQ(l.chars, text_chars);
  EXPECT_EQ(l.scored_tokens, static_cast<int64_t>(stream.size()) - 3);
  double sum = 0;
  for (const auto& seq : per_line) sum += sequences_perplexity(*model_, {seq}, 1, o).nll;
  EXPECT_NEAR(l.nll, sum, 1e-5 * sum);

  EXPECT_THROW(text_perplexity(*model_, *tok_, {"ok", "bad \xff byte"}, o), xlt::DataError);
  EXPECT_THROW(text_perplexity(*model_, *tok_, {"", " "}, o), xlt::DataError);

  // stride == max_length leaves each later window's first token unscored: the perplexity of
  // the scored tokens stands, bits per byte of the whole text would be too low and is not given.
  o.join = JoinMode::kStream;
  o.max_length = 4;
  o.stride = 4;
  PerplexityResult skip = text_perplexity(*model_, *tok_, lines, o);
  EXPECT_LT(skip.scored_tokens, static_cast<int64_t>(stream.size()) - 1);
  EXPECT_TRUE(std::isnan(skip.bits_per_byte));
  EXPECT_TRUE(std::isnan(skip.bits_per_char));
  EXPECT_TRUE(std::isfinite(skip.perplexity));
  o.stride = 2;
  EXPECT_TRUE(std::isfinite(text_perplexity(*model_, *tok_, lines, o).bits_per_byte));
}

// A text whose lines give no token after their first (</s> alone) has nothing to score: an error,
// not a NaN perplexity with 0 bits per byte.
TEST_F(TextPerplexity, NothingToScoreIsAnError) {
  PerplexityOptions o;
  o.max_length = 16;
  o.join = JoinMode::kLines;
  o.progress = false;
  const std::string zero_width = "\xe2\x80\x8b";  // U+200B: not blank, no piece
  ASSERT_EQ(tok_->encode(zero_width).ids.size(), 1u);
  try {
    text_perplexity(*model_, *tok_, {zero_width}, o);
    FAIL() << "expected DataError";
  } catch (const xlt::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("nothing to score"), std::string::npos) << e.what();
  }
}
