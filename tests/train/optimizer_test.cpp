// Tests for the optimisation pieces of xlt finetune: HF's no-decay grouping, the linear schedule
// (hand-computed values), the step against Hugging Face/PyTorch references for bert_tiny (through
// optimization_step, the function `xlt finetune` calls), clipping, and optimiser state round trips.
#include "xlt/train/optimizer.h"

#include <gtest/gtest.h>
#include <torch/version.h>

#include <cmath>

#include "common/test_env.h"
#include "train_test_util.h"
#include "xlt/core/error.h"
#include "xlt/models/training_step.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using train::linear_schedule_factor;

TEST(NoDecay, FollowsHuggingFaceGrouping) {
  EXPECT_TRUE(train::is_no_decay("bert.embeddings.LayerNorm.weight"));
  EXPECT_TRUE(train::is_no_decay("bert.embeddings.LayerNorm.bias"));
  EXPECT_TRUE(train::is_no_decay("bert.encoder.layer.3.output.dense.bias"));
  EXPECT_TRUE(train::is_no_decay("roberta.encoder.layer.0.attention.output.LayerNorm.weight"));
  EXPECT_TRUE(train::is_no_decay("model.layers.0.self_attn_layer_norm.weight"));
  EXPECT_TRUE(train::is_no_decay("classifier.out_proj.bias"));
  EXPECT_FALSE(train::is_no_decay("bert.embeddings.word_embeddings.weight"));
  EXPECT_FALSE(train::is_no_decay("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_FALSE(train::is_no_decay("classifier.weight"));
  EXPECT_FALSE(train::is_no_decay("bert.pooler.dense.weight"));
}

TEST(Schedule, LinearWarmupThenDecayToZero) {
  // get_linear_schedule_with_warmup(warmup=4, total=10): 0, .25, .5, .75, then (10-s)/6.
  const double want[] = {0.0,     0.25,    0.5,     0.75,    1.0, 5.0 / 6,
                         4.0 / 6, 3.0 / 6, 2.0 / 6, 1.0 / 6, 0.0};
  for (int s = 0; s <= 10; ++s) EXPECT_DOUBLE_EQ(linear_schedule_factor(s, 4, 10), want[s]) << s;
  // No warm-up: starts at the peak.
  EXPECT_DOUBLE_EQ(linear_schedule_factor(0, 0, 8), 1.0);
  EXPECT_DOUBLE_EQ(linear_schedule_factor(6, 0, 8), 0.25);
  EXPECT_DOUBLE_EQ(linear_schedule_factor(12, 0, 8), 0.0);  // clamped
  EXPECT_EQ(train::resolve_warmup_steps(0, 0.1, 95), 10);   // ceil(9.5)
  EXPECT_EQ(train::resolve_warmup_steps(7, 0.1, 95), 7);
  EXPECT_EQ(train::resolve_warmup_steps(0, 0.0, 95), 0);
}

class FixtureStep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fixtures_dir() / "bert_tiny";
    if (!fs::exists(dir_ / "ref.safetensors")) {
      if (in_ci()) FAIL() << "missing " << dir_;
      GTEST_SKIP() << "fixture missing: " << dir_;
    }
    ref_ = read_safetensors(dir_ / "ref.safetensors");
    model_ = models::load_model(dir_);
    for (auto& [n, p] : model_->named_parameters()) params_[n] = p;
    in_.input_ids = ref_.at("input_ids");
    in_.attention_mask = ref_.at("attention_mask");
    in_.token_type_ids = ref_.at("token_type_ids");
    in_.labels = ref_.at("labels");
  }
  // Relative to the reference's largest magnitude: float32 reductions in a different order
  // (libtorch C++ vs PyTorch eager) differ by a few ulps of the largest terms.
  void expect_rel(const at::Tensor& got, const at::Tensor& want, const std::string& what,
                  double rtol = 1e-5) {
    ASSERT_TRUE(got.defined()) << what;
    ASSERT_EQ(got.sizes(), want.sizes()) << what;
    const double scale = std::max(want.abs().max().item<double>(), 1e-30);
    const double d = (got - want).abs().max().item<double>();
    EXPECT_LE(d, rtol * scale) << what << ": max |diff| " << d << " vs max |ref| " << scale;
  }
  // Five large AdamW steps (lr 1e-2, weight decay 0.1, both groups) of an optimizer made with
  // `tested` on model_ against libtorch's per-op AdamW on a twin, with the same random gradients
  // (none for parameter `frozen`, which must stay as it was). Checks that the steps moved the
  // weights far beyond rounding and that tested's state continues in libtorch's optimizer;
  // returns the largest difference of parameters and moments, relative to the reference's
  // largest magnitude per tensor.
  double max_rel_diff_to_libtorch_adamw(train::OptimizerConfig tested, uint64_t seed,
                                        const std::string& frozen = "") {
    auto twin = models::load_model(dir_);
    train::OptimizerConfig plain;
    tested.lr = plain.lr = 1e-2;  // large steps, so a wrong term would show
    tested.weight_decay = plain.weight_decay = 0.1;
    plain.fused = false;
    auto a = train::make_optimizer(*model_, tested);
    auto b = train::make_optimizer(*twin, plain);
    auto tp = twin->named_parameters();
    const size_t trained_at = tp[0].first != frozen ? 0 : 1;
    const std::string trained = tp[trained_at].first;
    const auto trained_before = params_.at(trained).detach().clone();
    const auto frozen_before = frozen.empty() ? at::Tensor() : params_.at(frozen).detach().clone();
    at::manual_seed(seed);
    for (int step = 0; step < 5; ++step) {
      for (auto& [n, p] : tp) {
        if (n == frozen) continue;
        auto g = at::randn_like(p) * (step + 1);
        params_.at(n).mutable_grad() = g.clone();
        p.mutable_grad() = g;
      }
      a->step();
      b->step();
    }
    auto rel = [](const at::Tensor& got, const at::Tensor& want) {
      return (got - want).abs().max().item<double>() /
             std::max(want.abs().max().item<double>(), 1e-30);
    };
    double worst = 0;
    for (auto& [n, p] : tp) {
      const auto& q = params_.at(n);
      worst = std::max(worst, rel(q, p));
      if (n == frozen) continue;
      const auto ma = models::adamw_moments(*a, q), mb = models::adamw_moments(*b, p);
      EXPECT_EQ(ma.step, 5) << n;
      worst = std::max({worst, rel(ma.exp_avg, mb.exp_avg), rel(ma.exp_avg_sq, mb.exp_avg_sq)});
    }
    if (!frozen.empty()) {
      EXPECT_TRUE(params_.at(frozen).equal(frozen_before)) << frozen;
    }
    EXPECT_GT((params_.at(trained) - trained_before).abs().max().item<double>(), 1e-3);
    // The tested optimizer's state continues in libtorch's (checkpoints unchanged).
    const auto saved = train::optimizer_state_tensors(*model_, *a);
    auto c = train::make_optimizer(*twin, plain);
    train::load_optimizer_state(*twin, *c, saved, "test");
    EXPECT_EQ(models::adamw_moments(*c, tp[trained_at].second).step, 5);
    return worst;
  }
  // The step p - p0 against the reference's, not p against p: the update (~lr = 2e-5) is far
  // below the parameters' own magnitude, so comparing parameters to 1e-5 x max|p| would pass
  // with no update at all. Each side was rounded once to float32 when p0 + update was stored, so
  // elementwise they may differ by one ulp of p (2^-23 |p|) beyond 1e-4 of the largest update.
  void expect_update(const at::Tensor& got, const at::Tensor& want, const at::Tensor& p0,
                     const std::string& what) {
    ASSERT_EQ(got.sizes(), want.sizes()) << what;
    const at::Tensor step_got = got.detach().to(at::kDouble) - p0;
    const at::Tensor step_want = want.to(at::kDouble) - p0;
    const double largest = step_want.abs().max().item<double>();
    EXPECT_GT(largest, 0.0) << what;
    const at::Tensor tol = p0.abs() * std::ldexp(1.0, -23) + 1e-4 * largest;
    const at::Tensor excess = (step_got - step_want).abs() - tol;
    EXPECT_LE(excess.max().item<double>(), 0.0)
        << what << ": max |step diff| " << (step_got - step_want).abs().max().item<double>()
        << " vs max |step| " << largest;
  }
  fs::path dir_;
  std::map<std::string, at::Tensor> ref_;
  std::unique_ptr<models::Model> model_;
  std::map<std::string, at::Tensor> params_;
  models::ModelInputs in_;
};

// The reference's setting (manifest notes): one group with weight decay on every parameter, eval
// mode, no clipping, lr 2e-5 -- selected through the same config structs finetune fills in.
TEST_F(FixtureStep, MatchesHuggingFaceGradientsAndAdamW) {
  train::OptimizerConfig oc;
  oc.lr = 2e-5;
  oc.weight_decay = 0.01;
  oc.grouping = train::ParamGrouping::kSingleGroup;
  auto opt = train::make_optimizer(*model_, oc);
  ASSERT_EQ(opt->param_groups().size(), 1u);
  train::StepConfig sc;
  sc.lr = 2e-5;
  sc.max_grad_norm = 0;
  sc.train_mode = false;
  std::map<std::string, at::Tensor> before;
  for (auto& [n, p] : params_) before[n] = p.detach().to(at::kDouble);
  const auto stats = train::optimization_step(*model_, *opt, {in_}, sc);

  EXPECT_NEAR(stats.loss, ref_.at("loss").item<double>(), 1e-5);
  EXPECT_EQ(stats.tokens, in_.attention_mask.sum().item<int64_t>());
  // Global norm = L2 norm of the per-parameter norms HF reports.
  const double want_norm = ref_.at("grad_norms").norm().item<double>();
  EXPECT_NEAR(stats.grad_norm, want_norm, 1e-5 * want_norm);
  int checked = 0;
  for (const auto& [key, want] : ref_) {
    auto rest = [&](const std::string& prefix) { return key.substr(prefix.size()); };
    if (key.rfind("grad.", 0) == 0) {
      expect_rel(params_.at(rest("grad.")).grad(), want, key);
    } else if (key.rfind("adamw_param.", 0) == 0) {
      expect_update(params_.at(rest("adamw_param.")), want, before.at(rest("adamw_param.")), key);
    } else if (key.rfind("adamw_exp_avg_sq.", 0) == 0) {
      auto m = models::adamw_moments(*opt, params_.at(rest("adamw_exp_avg_sq.")));
      expect_rel(m.exp_avg_sq, want, key);
      EXPECT_EQ(m.step, 1);
    } else if (key.rfind("adamw_exp_avg.", 0) == 0) {
      expect_rel(models::adamw_moments(*opt, params_.at(rest("adamw_exp_avg."))).exp_avg, want,
                 key);
    } else {
      continue;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 24);  // 6 parameters x (grad, param, exp_avg, exp_avg_sq)
}

// HF grouping: biases and LayerNorm parameters keep their value under weight decay when their
// gradient is zero; other parameters shrink by exactly lr * wd.
TEST_F(FixtureStep, HfGroupingExcludesBiasAndLayerNormFromDecay) {
  train::OptimizerConfig oc;
  oc.lr = 0.1;
  oc.weight_decay = 0.5;
  auto opt = train::make_optimizer(*model_, oc);
  ASSERT_EQ(opt->param_groups().size(), 2u);
  size_t no_decay = 0;
  for (auto& [n, p] : params_) no_decay += train::is_no_decay(n);
  EXPECT_EQ(opt->param_groups()[1].params().size(), no_decay);
  EXPECT_EQ(no_decay, 24u);  // 5 LayerNorms x 2 + 14 biases of linear layers
  // Zero gradients: Adam's update is 0, only decoupled decay moves the weights.
  std::map<std::string, at::Tensor> before;
  for (auto& [n, p] : params_) {
    before[n] = p.detach().clone();
    p.mutable_grad() = at::zeros_like(p);
  }
  opt->step();
  for (auto& [n, p] : params_) {
    const double factor = train::is_no_decay(n) ? 1.0 : 1.0 - 0.1 * 0.5;
    EXPECT_TRUE(at::allclose(p, before[n] * factor, 0, 1e-6)) << n;
  }
}

TEST_F(FixtureStep, ClippingScalesToMaxNorm) {
  auto opt = train::make_optimizer(*model_, {});
  train::StepConfig sc;
  sc.max_grad_norm = 0.01;
  sc.train_mode = false;
  const auto stats = train::optimization_step(*model_, *opt, {in_}, sc);
  EXPECT_GT(stats.grad_norm, 0.01);  // the fixture's norm is far larger
  double sq = 0;
  for (auto& [n, p] : params_) sq += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(sq), 0.01, 1e-6);  // torch: max_norm / (norm + 1e-6)
}

// One micro-batch per example (the fixture's batch of 3) gives Hugging Face's full-batch gradient
// (the fixture's grad.*, one backward over the whole batch) and loss: each micro-batch's mean loss
// is scaled by 1/3, and the mean of equal-size micro-batch means is the full-batch mean.
TEST_F(FixtureStep, GradientAccumulationMatchesTheFullBatchGradient) {
  auto rows = [&](int64_t from, int64_t to) {
    models::ModelInputs m;
    m.input_ids = in_.input_ids.slice(0, from, to);
    m.attention_mask = in_.attention_mask.slice(0, from, to);
    m.token_type_ids = in_.token_type_ids.slice(0, from, to);
    m.labels = in_.labels.slice(0, from, to);
    return m;
  };
  const int64_t b = in_.input_ids.size(0);
  ASSERT_EQ(b, 3);
  std::vector<models::ModelInputs> micro;
  for (int64_t i = 0; i < b; ++i) micro.push_back(rows(i, i + 1));
  auto opt = train::make_optimizer(*model_, {});
  train::StepConfig sc;
  sc.max_grad_norm = 0;
  sc.train_mode = false;
  sc.lr = 0;
  const auto stats = train::optimization_step(*model_, *opt, micro, sc);
  EXPECT_NEAR(stats.loss, ref_.at("loss").item<double>(), 1e-5);
  EXPECT_EQ(stats.examples, b);
  EXPECT_NEAR(stats.grad_norm, ref_.at("grad_norms").norm().item<double>(),
              1e-5 * ref_.at("grad_norms").norm().item<double>());
  int checked = 0;
  for (const auto& [key, want] : ref_) {
    if (key.rfind("grad.", 0) != 0) continue;
    expect_rel(params_.at(key.substr(5)).grad(), want, key);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

// Saving the moments and loading them into a fresh optimizer continues bit-identically.
TEST_F(FixtureStep, OptimizerStateRoundTripIsExact) {
  train::StepConfig sc;
  sc.train_mode = false;
  sc.lr = 1e-3;
  auto opt = train::make_optimizer(*model_, {});
  train::optimization_step(*model_, *opt, {in_}, sc);
  const auto saved = train::optimizer_state_tensors(*model_, *opt);
  EXPECT_EQ(saved.size(), 3 * params_.size());
  EXPECT_EQ(saved.at("step.classifier.weight").item<int64_t>(), 1);

  auto twin = models::load_model(dir_);
  {
    at::NoGradGuard g;
    auto tp = twin->named_parameters();
    for (auto& [n, p] : tp) p.copy_(params_.at(n));
  }
  auto opt2 = train::make_optimizer(*twin, {});
  train::load_optimizer_state(*twin, *opt2, saved, "test");
  train::optimization_step(*model_, *opt, {in_}, sc);
  train::optimization_step(*twin, *opt2, {in_}, sc);
  for (auto& [n, p] : twin->named_parameters()) {
    EXPECT_TRUE(at::equal(p, params_.at(n))) << n;
    EXPECT_EQ(models::adamw_moments(*opt2, p).step, 2) << n;
  }
  // A state for another model is rejected with the names.
  auto bad = saved;
  bad.erase("exp_avg.classifier.weight");
  bad["exp_avg_sq.classifier.bias"] = at::zeros({7});
  try {
    train::load_optimizer_state(*twin, *opt2, bad, "opt.safetensors");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("opt.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("missing exp_avg.classifier.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("exp_avg_sq.classifier.bias has shape [7]"), std::string::npos) << m;
  }
}

// The fused CPU AdamW against libtorch's per-op AdamW: five steps with both groups (decay and
// no decay), random gradients, a saved state continued by the other implementation.
TEST_F(FixtureStep, FusedAdamWMatchesLibtorchAdamW) {
  train::OptimizerConfig fused;
  // float32 rounding only (the same operations, evaluated as one expression per element).
  EXPECT_LT(max_rel_diff_to_libtorch_adamw(fused, 5), 1e-6);
}

// The GPU path (PyTorch 2.x's multi-tensor _fused_adamw_, one launch per group) run on the CPU:
// the same five steps as libtorch's AdamW, within float rounding of a differently ordered
// formula, state interchangeable, and the parameters without a gradient left alone.
TEST_F(FixtureStep, MultiTensorAdamWMatchesLibtorchAdamW) {
  if (TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 4)) {
    GTEST_SKIP() << "PyTorch's CPU _fused_adamw_ needs PyTorch >= 2.4 (this is " << TORCH_VERSION
                 << ")";
  }
  train::OptimizerConfig multi;
  multi.multi_tensor = true;
  const std::string frozen = model_->named_parameters()[0].first;  // never given a gradient
  EXPECT_LT(max_rel_diff_to_libtorch_adamw(multi, 6, frozen), 1e-6);
}

// Dropout is active in training mode and reproducible from the step seed.
TEST_F(FixtureStep, DropoutSeedMakesTrainingStepsReproducible) {
  auto run = [&](uint64_t seed) {
    auto m = models::load_model(dir_);
    auto opt = train::make_optimizer(*m, {});
    train::StepConfig sc;
    sc.dropout_seed = seed;
    return train::optimization_step(*m, *opt, {in_}, sc).loss;
  };
  const double a = run(11), b = run(11), c = run(12);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, ref_.at("loss").item<double>());  // dropout changed the loss vs eval mode
}

}  // namespace
}  // namespace xlt::test
