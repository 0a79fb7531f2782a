// Model behaviour beyond the fixtures: hand-computed position ids, masks, the XGLM loss shift,
// padding invariance, train/eval modes, bfloat16, input validation, init scheme and saving.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <cmath>
#include <set>

#include "common/test_env.h"
#include "models/encoder_blocks.h"
#include "models/layers.h"
#include "models/xglm.h"
#include "xlt/core/error.h"
#include "xlt/models/model.h"
#include "xlt/models/training_step.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;

io::ModelConfig tiny_config(const std::string& type) {
  nlohmann::json j;
  j["model_type"] = type;
  j["vocab_size"] = 50;
  if (type == "xglm") {
    j["d_model"] = 16;
    j["num_layers"] = 2;
    j["attention_heads"] = 2;
    j["ffn_dim"] = 32;
    j["max_position_embeddings"] = 32;
    j["pad_token_id"] = 1;
  } else {
    j["hidden_size"] = 16;
    j["num_hidden_layers"] = 2;
    j["num_attention_heads"] = 2;
    j["intermediate_size"] = 32;
    j["max_position_embeddings"] = 40;
    j["pad_token_id"] = type == "bert" ? 0 : 1;
    if (type == "xlm-roberta") j["type_vocab_size"] = 1;
  }
  return io::ModelConfig::from_json(j, "test");
}

TEST(Positions, RobertaSkipsPaddingAndStartsAfterIt) {
  auto ids = at::tensor({0, 5, 6, 2, 1, 1, 1, 7, 1, 9}, at::kLong).view({2, 5});
  auto got = models::roberta_position_ids(ids, 1);
  auto want = at::tensor({2, 3, 4, 5, 1, 1, 1, 2, 1, 3}, at::kLong).view({2, 5});
  EXPECT_TRUE(at::equal(got, want)) << got;
}

TEST(Masks, CausalMaskCombinesFutureAndPadding) {
  auto mask = at::tensor({1, 1, 0}, at::kLong).view({1, 3});
  auto bias = models::causal_mask_bias(mask, 1, 3, at::kFloat, at::kCPU).view({3, 3});
  const float m = std::numeric_limits<float>::lowest();
  auto want = at::tensor({0.f, m, m, 0.f, 0.f, m, 0.f, 0.f, m}).view({3, 3});
  EXPECT_TRUE(at::equal(bias, want)) << bias;
  auto pad = models::padding_mask_bias(mask, at::kFloat).view({3});
  EXPECT_TRUE(at::equal(pad.abs(), at::tensor({0.f, 0.f, -m}))) << pad;
}

TEST(Xglm, LossShiftsLabelsLeftAndTargetsPadAtTheEnd) {
  // Uniform logits over V = 4 except a boost so every target has a distinct probability.
  auto logits = at::zeros({1, 3, 4});
  logits[0][0][2] = 1.0;  // position 0 predicts labels[1] = 2
  logits[0][1][3] = 2.0;  // position 1 predicts labels[2] = 3
  logits[0][2][1] = 3.0;  // position 2 predicts pad_token_id = 1
  auto labels = at::tensor({0, 2, 3}, at::kLong).view({1, 3});
  auto loss = models::xglm_causal_lm_loss(logits, labels, /*pad=*/1).item<double>();
  auto nll = [](double boost) { return -(boost - std::log(3.0 + std::exp(boost))); };
  EXPECT_NEAR(loss, (nll(1.0) + nll(2.0) + nll(3.0)) / 3.0, 1e-6);
  // -100 in labels is ignored once shifted; the final pad target still counts.
  labels[0][2] = -100;
  loss = models::xglm_causal_lm_loss(logits, labels, 1).item<double>();
  EXPECT_NEAR(loss, (nll(1.0) + nll(3.0)) / 2.0, 1e-6);
}

TEST(Xglm, SinusoidalTableMatchesTheFormula) {
  auto t = models::xglm_sinusoidal_table(6, 8, 1);
  const double step = std::log(10000.0) / 3.0;
  for (int p : {0, 2, 5}) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(t[p][i].item<double>(), std::sin(p * std::exp(-i * step)), 1e-6);
      EXPECT_NEAR(t[p][i + 4].item<double>(), std::cos(p * std::exp(-i * step)), 1e-6);
    }
  }
  EXPECT_TRUE(at::equal(t[1], at::zeros({8})));
}

TEST(Dropout, DropsAFractionPScalesSurvivorsAndIsSeeded) {
  auto x = at::ones({1000, 1001}).requires_grad_();
  at::manual_seed(17);
  auto y = models::dropout(x, 0.1, true);
  const double zero_fraction = y.eq(0).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(zero_fraction, 0.1, 0.002);  // 1M Bernoulli draws: std 3e-4
  const float scale = static_cast<float>(1.0 / 0.9);
  EXPECT_TRUE(at::logical_or(y.eq(0), y.eq(scale)).all().item<bool>());
  // Neighbouring elements are independent (a hash that reused halves would correlate them).
  auto pairs = y.view({-1, 2}).eq(0).to(at::kDouble);
  EXPECT_NEAR((pairs.select(1, 0) * pairs.select(1, 1)).mean().item<double>(), 0.01, 0.001);
  at::manual_seed(17);
  EXPECT_TRUE(at::equal(models::dropout(x, 0.1, true), y));
  EXPECT_FALSE(at::equal(models::dropout(x, 0.1, true), y));
  y.sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), y.detach()));  // d(x * mask)/dx = mask
  EXPECT_TRUE(models::dropout(x, 0.1, false).is_same(x));
  auto b = models::dropout(at::ones({64, 64}, at::kBFloat16), 0.5, true);
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_NEAR(b.eq(0).to(at::kDouble).mean().item<double>(), 0.5, 0.05);
}

// xlt's own parallel kernels (dropout masks, the fused AdamW) use at::parallel_for, a header
// template that is parallel only in code compiled with OpenMP when libtorch uses OpenMP; the
// build once left that out and every such kernel ran on one thread. Their results must not
// depend on the thread count.
TEST(Threads, ParallelForUsesThemAndDropoutIgnoresTheirCount) {
#ifdef _OPENMP
  if (omp_get_thread_limit() < 2 || omp_get_dynamic()) {
    GTEST_SKIP() << "OpenMP may not give two threads here (OMP_THREAD_LIMIT / OMP_DYNAMIC)";
  }
#endif
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(models::parallel_for_threads(), 2)
      << "at::parallel_for ran serially in xlt's code: is it compiled with -fopenmp?";
  const auto x = at::randn({3, 100001});  // 150k mask pairs: split between the two threads
  at::manual_seed(5);
  const auto two = models::dropout(x, 0.1, true);
  at::set_num_threads(1);
  EXPECT_EQ(models::parallel_for_threads(), 1);
  at::manual_seed(5);
  const auto one = models::dropout(x, 0.1, true);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(one, two));
  EXPECT_NEAR(two.eq(0).to(at::kDouble).mean().item<double>(), 0.1, 0.003);
}

class AllArchs : public ::testing::TestWithParam<std::string> {};

// A sentence's outputs at its real tokens do not depend on the padding added after it (BERT,
// XLM-R, XGLM's causal mask), up to float32 summation-order noise.
TEST_P(AllArchs, RightPaddingDoesNotChangeRealTokens) {
  auto model = models::create_model(tiny_config(GetParam()), 5);
  const int64_t pad = model->config().pad_token_id;
  auto ids = at::tensor(std::vector<int64_t>{3, 17, 9, 4, pad, pad}).view({1, 6});
  auto mask = at::tensor({1, 1, 1, 1, 0, 0}, at::kLong).view({1, 6});
  models::ModelInputs padded{ids, mask};
  models::ModelInputs alone{ids.narrow(1, 0, 4), mask.narrow(1, 0, 4)};
  auto a = model->forward(padded).last_hidden_state.narrow(1, 0, 4);
  auto b = model->forward(alone).last_hidden_state;
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
}

TEST_P(AllArchs, EvalIsDeterministicTrainAppliesDropout) {
  auto model = models::create_model(tiny_config(GetParam()), 5);
  auto ids = at::tensor({3, 17, 9, 4, 8, 21}, at::kLong).view({2, 3});
  models::ModelInputs in{ids};
  auto e1 = model->forward(in).logits;
  auto e2 = model->forward(in).logits;
  EXPECT_TRUE(at::equal(e1, e2));
  model->train();
  EXPECT_TRUE(model->is_training());
  auto t1 = model->forward(in).logits;
  EXPECT_FALSE(at::allclose(t1, e1));
  model->eval();
  EXPECT_TRUE(at::equal(model->forward(in).logits, e1));
}

TEST_P(AllArchs, Bfloat16InferenceStaysCloseToFloat32) {
  auto model = models::create_model(tiny_config(GetParam()), 5);
  auto ids = at::tensor({3, 17, 9, 4, 8, 21}, at::kLong).view({2, 3});
  models::ModelInputs in{ids, at::ones({2, 3}, at::kLong)};
  auto f32 = model->forward(in).last_hidden_state;
  model->to(at::kCPU, at::kBFloat16);
  EXPECT_EQ(model->dtype(), at::kBFloat16);
  c10::InferenceMode guard;
  auto bf16 = model->forward(in).last_hidden_state;
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  // bfloat16 keeps 8 mantissa bits: ~1% of the LayerNorm-scale values.
  EXPECT_LT((bf16.to(at::kFloat) - f32).abs().max().item<double>(), 0.1);
}

TEST_P(AllArchs, OutputsHaveHfShapes) {
  auto config = tiny_config(GetParam());
  auto model = models::create_model(config, 5);
  auto ids = at::tensor({3, 17, 9, 4, 8, 21}, at::kLong).view({2, 3});
  models::ForwardOptions opt;
  opt.output_hidden_states = opt.output_attentions = true;
  auto out = model->forward(models::ModelInputs{ids}, opt);
  EXPECT_EQ(out.hidden_states.size(), 3u);
  EXPECT_EQ(out.attentions.size(), 2u);
  EXPECT_EQ(out.attentions[0].sizes(), (at::IntArrayRef{2, 2, 3, 3}));
  // Attention rows are probability distributions.
  EXPECT_TRUE(at::allclose(out.attentions[1].sum(-1), at::ones({2, 2, 3})));
  if (GetParam() == "xglm") {
    EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{2, 3, 50}));
    EXPECT_EQ(out.layer_outputs.size(), 2u);
    EXPECT_FALSE(out.pooler_output.defined());
  } else {
    EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{2, 2}));
    EXPECT_EQ(out.pooler_output.defined(), GetParam() == "bert");
  }
  opt.compute_logits = false;
  auto bare = model->forward(models::ModelInputs{ids, {}, {}, at::zeros({2}, at::kLong)}, opt);
  EXPECT_FALSE(bare.logits.defined());
  EXPECT_FALSE(bare.loss.defined());
}

TEST_P(AllArchs, BadInputsAreDataErrors) {
  auto model = models::create_model(tiny_config(GetParam()), 5);
  auto ids = at::tensor({3, 17, 9, 4, 8, 21}, at::kLong).view({2, 3});
  EXPECT_THROW(model->forward({at::tensor({3, 50}, at::kLong).view({1, 2})}), DataError);
  EXPECT_THROW(model->forward({ids, at::ones({2, 4}, at::kLong)}), DataError);
  EXPECT_THROW(model->forward({ids.view({6})}), DataError);
  auto message = [&](const models::ModelInputs& in) -> std::string {
    try {
      model->forward(in);
    } catch (const DataError& e) {
      return e.what();
    }
    return "(no DataError)";
  };
  // Empty sequences, and labels the loss would abort on (libtorch's errors came out as a stack
  // trace and exit 3): out-of-range or misshapen class ids, float labels of the wrong shape.
  EXPECT_NE(message({at::zeros({1, 0}, at::kLong)}).find("empty sequences (shape [1, 0])"),
            std::string::npos);
  const bool lm = GetParam() == "xglm";
  const int64_t classes = lm ? tiny_config("xglm").vocab_size : 2;
  const auto labels = lm ? at::full({2, 3}, classes, at::kLong) : at::tensor({0, 2}, at::kLong);
  EXPECT_NE(message({ids, {}, {}, labels})
                .find("class ids in [0, " + std::to_string(classes) +
                      ") or -100 (ignored), found " + std::to_string(classes)),
            std::string::npos)
      << message({ids, {}, {}, labels});
  const auto negative = lm ? at::full({2, 3}, -3, at::kLong) : at::tensor({-3, 1}, at::kLong);
  EXPECT_NE(message({ids, {}, {}, negative}).find("found -3"), std::string::npos);
  const auto ignored = lm ? at::full({2, 3}, -100, at::kLong) : at::tensor({-100, 1}, at::kLong);
  EXPECT_EQ(message({ids, {}, {}, ignored}), "(no DataError)");
  if (!lm) {
    EXPECT_NE(message({ids, {}, {}, at::tensor({0, 1, 1}, at::kLong)})
                  .find("one class id per sequence ([2]), got shape [3]"),
              std::string::npos);
    EXPECT_NE(message({ids, {}, {}, at::tensor({0.5f, 1.5f})}).find("needs one 0/1 target"),
              std::string::npos);
  }
  // Learned position tables end at max_position_embeddings; XGLM's sinusoids grow as in HF.
  if (GetParam() == "xglm") {
    EXPECT_EQ(model->forward({at::full({1, 60}, 5, at::kLong)}).logits.size(1), 60);
  } else {
    // Exactly at the limit max_sequence_length names (40 for BERT; 40 - pad 1 - 1 for XLM-R,
    // whose positions start at pad_token_id + 1), one more is refused.
    const int64_t limit = models::max_sequence_length(*model);
    EXPECT_EQ(limit, GetParam() == "bert" ? 40 : 38);
    EXPECT_NO_THROW(model->forward({at::full({1, limit}, 5, at::kLong)}));
    const std::string m = message({at::full({1, limit + 1}, 5, at::kLong)});
    EXPECT_NE(m.find("sequence length " + std::to_string(limit + 1) + " exceeds"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("max_position_embeddings 40"), std::string::npos) << m;
  }
}

TEST_P(AllArchs, InitFollowsHfScheme) {
  auto config = tiny_config(GetParam());
  auto model = models::create_model(config, 11);
  for (const auto& [name, p] : model->named_parameters()) {
    const bool norm =
        name.find("LayerNorm") != std::string::npos || name.find("layer_norm") != std::string::npos;
    if (norm && name.find("weight") != std::string::npos) {
      EXPECT_TRUE(at::equal(p, at::ones_like(p))) << name;
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      EXPECT_TRUE(at::equal(p, at::zeros_like(p))) << name;
    } else if (p.numel() >= 512) {
      EXPECT_NEAR(p.std().item<double>(), config.initializer_range, 0.003) << name;
    }
    if (name.find("word_embeddings") != std::string::npos ||
        name.find("embed_tokens") != std::string::npos) {
      EXPECT_TRUE(at::equal(p[config.pad_token_id], at::zeros({p.size(1)}))) << name;
    }
  }
  // Seeded: the same seed gives the same model.
  auto again = models::create_model(config, 11);
  EXPECT_TRUE(at::equal(model->parameters()[0], again->parameters()[0]));
}

// The model's files are replaced as a whole (stale weights and tokenizer files of an earlier
// model go); the user's own files there stay, as with save_pretrained.
TEST_P(AllArchs, SaveReplacesTheModelKeepsOtherFilesAndReloads) {
  auto model = models::create_model(tiny_config(GetParam()), 5);
  TempDir tmp;
  const fs::path out = tmp / "model";
  fs::create_directories(out / "notes");
  write_text(out / "README.md", "mine");
  write_text(out / "notes" / "n.txt", "also mine");
  write_text(out / "bert-config.json", "{}");
  write_text(out / "model-best.safetensors", "a user's file, not a shard name");
  write_text(out / "notes.tmp.md", "a user's file, not a temp file");
  write_text(out / ".model.safetensors.tmp.4242.0.beef", "a killed save's temp file");
  fs::create_directory_symlink("..", out / "up");  // kept as a link, never followed
  for (const char* stale : {"model-00001-of-00002.safetensors", "model.safetensors.index.json",
                            "pytorch_model.bin", "sentencepiece.bpe.model", "tokenizer.json"}) {
    write_text(out / stale, "old");
  }
  write_text(tmp / "vocab.txt", "[PAD]\n");
  models::SaveOptions so;
  so.tokenizer_dir = tmp.path();
  models::save_model(*model, out, so);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"README.md", "bert-config.json", "config.json",
                                          "model-best.safetensors", "model.safetensors", "notes",
                                          "notes.tmp.md", "up", "vocab.txt"}));
  EXPECT_TRUE(fs::is_symlink(out / "up"));
  EXPECT_EQ(read_text(out / "README.md"), "mine");
  EXPECT_EQ(read_text(out / "notes" / "n.txt"), "also mine");
  EXPECT_EQ(read_text(out / "vocab.txt"), "[PAD]\n");
  auto reloaded = models::load_model(out);
  EXPECT_EQ(reloaded->num_parameters(), model->num_parameters());
  EXPECT_EQ(models::checkpoint_names(*reloaded), models::checkpoint_names(*model));
  auto ids = at::tensor({3, 17, 9}, at::kLong).view({1, 3});
  EXPECT_TRUE(at::equal(reloaded->forward({ids}).logits, model->forward({ids}).logits));
  // Nothing but the model folder is left beside it.
  int entries = 0;
  for (auto& e : fs::directory_iterator(tmp.path())) entries += e.path() != tmp / "vocab.txt";
  EXPECT_EQ(entries, 1);

  // The current folder (or one above it) cannot be replaced: refused, nothing written.
  const fs::path here = fs::current_path();
  fs::current_path(out / "notes");
  EXPECT_THROW(models::save_model(*model, ".", so), IoError);
  EXPECT_THROW(models::save_model(*model, "..", so), IoError);
  // Also when named through a symbolic link (a symlinked home: the current folder is physical).
  fs::create_directory_symlink(out, tmp / "alias");
  EXPECT_THROW(models::save_model(*model, tmp / "alias", so), IoError);
  fs::current_path(here);
  EXPECT_FALSE(fs::exists(out / "notes" / "config.json"));

  // A file where the folder would go (here the vocabulary itself) is refused, not replaced.
  const std::string vocab = read_text(tmp / "vocab.txt");
  try {
    models::save_model(*model, tmp / "vocab.txt", so);
    ADD_FAILURE() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.txt: exists and is not a folder"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_text(tmp / "vocab.txt"), vocab);
}

INSTANTIATE_TEST_SUITE_P(Archs, AllArchs, ::testing::Values("bert", "xlm-roberta", "xglm"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(TrainingStep, ClipGradNormMatchesHandComputation) {
  auto model = models::create_model(tiny_config("bert"), 5);
  auto params = model->parameters();
  for (auto& p : params) p.mutable_grad() = at::zeros_like(p);
  params[0].mutable_grad().view(-1)[0] = 3.0;
  params[1].mutable_grad().view(-1)[0] = 4.0;
  EXPECT_NEAR(models::clip_grad_norm(*model, 0), 5.0, 1e-6);
  EXPECT_NEAR(models::clip_grad_norm(*model, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(params[0].grad().view(-1)[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(models::clip_grad_norm(*model, 0), 1.0, 1e-5);
}

TEST(TrainingStep, RepeatedStepsFitABatch) {
  auto model = models::create_model(tiny_config("xlm-roberta"), 5);
  model->train();
  models::AdamWConfig c;
  c.lr = 1e-2;
  auto opt = models::make_adamw(*model, c);
  models::ModelInputs in{at::tensor({0, 7, 9, 2, 0, 12, 30, 2}, at::kLong).view({2, 4})};
  in.labels = at::tensor({0, 1}, at::kLong);
  auto first = models::train_step(*model, *opt, in, {1.0});
  double last = first.loss;
  for (int i = 0; i < 30; ++i) last = models::train_step(*model, *opt, in, {1.0}).loss;
  EXPECT_LT(last, first.loss * 0.5) << "first " << first.loss << " last " << last;
  EXPECT_EQ(models::adamw_moments(*opt, model->parameters()[0]).step, 31);
  models::set_learning_rate(*opt, 0.5);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).lr(),
                   0.5);
}

TEST(Runtime, BlasKernelsMatchTheCpu) {
  const std::string blas = models::ensure_fast_blas();
  ASSERT_FALSE(blas.empty());
  EXPECT_EQ(models::ensure_fast_blas(), blas);  // once per process
  __builtin_cpu_init();
  if (blas.rfind("OpenBLAS ", 0) == 0 && __builtin_cpu_supports("avx2")) {
    EXPECT_EQ(blas.find("OpenBLAS Prescott"), std::string::npos) << blas;
  }
}

TEST(Runtime, ParsesDevicesAndDtypes) {
  EXPECT_EQ(models::parse_device("cpu"), c10::Device(c10::kCPU));
  EXPECT_THROW(models::parse_device("gpu"), UsageError);
  EXPECT_EQ(models::parse_dtype("bf16"), at::kBFloat16);
  EXPECT_EQ(models::parse_dtype("float32"), at::kFloat);
  EXPECT_THROW(models::parse_dtype("int8"), UsageError);
  EXPECT_EQ(models::set_threads(1), 1);
}

}  // namespace
}  // namespace xlt::test
