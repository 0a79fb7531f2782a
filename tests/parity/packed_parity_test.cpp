// Unpadded (packed) execution against the padded one and against Hugging Face, data-driven over
// every fixture folder: the fixture's own batch (right-padded, mixed lengths) and held-out shapes
// drawn here (unsorted lengths, one-token rows, a full-length row, token types 0/1). Real-token
// outputs and gradients must agree within 1e-5; padding positions of a packed run are exactly
// zero, which is also how the tests know the packed path ran.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>
#include <limits>

#include "common/test_env.h"
#include "models/layers.h"
#include "parity/parity_util.h"
#include "xlt/models/model.h"
#include "xlt/models/training_step.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using models::ForwardOptions;
using models::ModelInputs;

constexpr double kAtol = 1e-5;       // forward, float32 (XGLM also 1e-5 relative, as its parity)
constexpr double kGradRtol = 1e-5;   // gradients, relative to the largest element
constexpr double kGradFloor = 1e-6;  // ... plus this times the largest gradient of the model

class PackedParity : public ::testing::TestWithParam<fs::path> {};

ModelInputs fixture_inputs(const Reference& ref) {
  ModelInputs in;
  in.input_ids = ref.get("input_ids");
  in.attention_mask = ref.get("attention_mask");
  if (ref.has("token_type_ids")) in.token_type_ids = ref.get("token_type_ids");
  return in;
}

// Held-out shapes: lengths unsorted, one-token rows, one row without padding; ids drawn from the
// vocabulary (padding id at padding positions); token types 0 then 1 for encoders.
ModelInputs held_out_inputs(const models::Model& model, uint64_t seed, bool left_padded = false) {
  const auto& c = model.config();
  at::manual_seed(static_cast<int64_t>(seed));
  const std::vector<int64_t> lengths = {5, 1, 17, 9, 1, 23, 12, 23};
  const int64_t b = static_cast<int64_t>(lengths.size()), t = 23;
  const int64_t lo = std::max<int64_t>(c.pad_token_id + 1, 3);
  auto ids = at::randint(lo, c.vocab_size, {b, t}, at::kLong);
  auto mask = at::zeros({b, t}, at::kLong);
  auto types = at::zeros({b, t}, at::kLong);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = lengths[static_cast<size_t>(i)];
    mask[i].narrow(0, left_padded ? t - len : 0, len).fill_(1);
    if (lengths[static_cast<size_t>(i)] > 2)
      types[i]
          .narrow(0, lengths[static_cast<size_t>(i)] / 2, (lengths[static_cast<size_t>(i)] + 1) / 2)
          .fill_(1);
  }
  ids = at::where(mask.eq(1), ids, at::full_like(ids, c.pad_token_id));
  ModelInputs in{ids, mask};
  if (model.type() != io::ModelType::kXglm && c.type_vocab_size > 1)
    in.token_type_ids = types * mask;
  return in;
}

// [B, T, 1] float mask of real positions.
at::Tensor real_positions(const ModelInputs& in) {
  return in.attention_mask.to(at::kFloat).unsqueeze(-1);
}

double tol_for(const models::Model& model) {
  return model.type() == io::ModelType::kXglm ? 1e-5 : 0.0;
}

ForwardOptions packed_options() {
  ForwardOptions o;
  o.packed = true;
  return o;
}

// Compares packed and padded forward outputs at real positions, checks packed padding is zero,
// and (fixture batch) packed outputs against the reference tensors. Returns the largest diff.
void check_forward(models::Model& model, const ModelInputs& in, const Reference* ref,
                   const std::string& what) {
  ForwardOptions padded_opt;
  padded_opt.output_hidden_states = true;
  ForwardOptions packed_opt = padded_opt;
  packed_opt.packed = true;
  const auto padded = model.forward(in, padded_opt);
  const auto packed = model.forward(in, packed_opt);
  const auto real = real_positions(in);
  const double rtol = tol_for(model);

  ASSERT_EQ(packed.hidden_states.size(), padded.hidden_states.size());
  std::vector<std::pair<std::string, std::pair<at::Tensor, at::Tensor>>> pairs;
  pairs.push_back({"last_hidden_state", {packed.last_hidden_state, padded.last_hidden_state}});
  for (size_t i = 0; i < packed.hidden_states.size(); ++i)
    pairs.push_back(
        {"hidden_states." + std::to_string(i), {packed.hidden_states[i], padded.hidden_states[i]}});
  for (size_t i = 0; i < packed.layer_outputs.size(); ++i)
    pairs.push_back(
        {"layer_outputs." + std::to_string(i), {packed.layer_outputs[i], padded.layer_outputs[i]}});
  double worst = 0;
  for (const auto& [key, t] : pairs) {
    const auto& [got, want] = t;
    // Exactly zero at padding: the packed path ran and wrote nothing there.
    EXPECT_EQ((got * (1 - real)).abs().max().item<double>(), 0.0) << what << " " << key;
    worst = std::max(worst, expect_close(got * real, want * real, kAtol, rtol,
                                         what + " " + key + " packed vs padded"));
    if (ref && ref->has(key)) {
      expect_close(got * real, ref->get(key) * real, kAtol, rtol, what + " " + key + " vs HF");
    }
  }
  if (model.type() == io::ModelType::kXglm) {
    worst = std::max(worst, expect_close(packed.logits * real, padded.logits * real, kAtol, rtol,
                                         what + " logits packed vs padded"));
  } else {
    worst = std::max(worst, expect_close(packed.logits, padded.logits, kAtol, 0.0,
                                         what + " logits packed vs padded"));
    if (ref && ref->has("logits"))
      expect_close(packed.logits, ref->get("logits"), kAtol, 0.0, what + " logits vs HF");
    if (padded.pooler_output.defined())
      expect_close(packed.pooler_output, padded.pooler_output, kAtol, 0.0, what + " pooler_output");
  }
  std::cout << "[packed] " << what << " forward max|packed - padded| " << worst << "\n";
}

// Gradients of a loss that reads every real position (fixed random weights on the last hidden
// state, plus the classification loss for encoders), packed vs padded, in eval mode.
// `want` and `got` are the two runs' options (default: padded, then packed).
void check_gradients(models::Model& model, const ModelInputs& in, const std::string& what,
                     ForwardOptions want = {}, ForwardOptions got = packed_options()) {
  at::manual_seed(11);
  const auto w =
      at::randn({in.input_ids.size(0), in.input_ids.size(1), model.config().hidden_size});
  const auto real = real_positions(in);
  ModelInputs labelled = in;
  if (model.type() != io::ModelType::kXglm)
    labelled.labels = at::arange(in.input_ids.size(0), at::kLong) % model.num_labels();
  auto grads = [&](const ForwardOptions& o) {
    models::zero_grad(model);
    const auto out = model.forward(labelled, o);
    auto loss = (out.last_hidden_state * w * real).sum() * 1e-2;
    if (out.loss.defined()) loss = loss + out.loss;
    loss.backward();
    std::vector<std::pair<std::string, at::Tensor>> g;
    for (const auto& [n, p] : model.named_parameters())
      g.emplace_back(n, p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    return g;
  };
  const auto padded = grads(want);
  const auto packed = grads(got);
  double global = 0;
  for (const auto& [n, g] : padded) global = std::max(global, g.abs().max().item<double>());
  double worst = 0;
  for (size_t i = 0; i < padded.size(); ++i) {
    const double scale = std::max(padded[i].second.abs().max().item<double>(), 1e-30);
    // Attention key biases have an exactly zero gradient (softmax ignores a per-query constant):
    // both runs hold float32 noise there, hence the floor relative to the largest gradient.
    const double atol = kGradRtol * scale + kGradFloor * global;
    const double d = expect_close(packed[i].second, padded[i].second, atol, 0.0,
                                  what + " grad." + padded[i].first);
    worst = std::max(worst, d / std::max(global, 1e-30));
  }
  std::cout << "[" << what << "] gradients max|difference| / largest gradient " << worst << " over "
            << padded.size() << " parameters\n";
}

TEST_P(PackedParity, ForwardOnFixtureBatch) {
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  check_forward(*model, fixture_inputs(ref), &ref, fixture_name(GetParam()));
}

TEST_P(PackedParity, ForwardOnHeldOutShapes) {
  auto model = models::load_model(GetParam());
  for (uint64_t seed : {1, 2}) {
    check_forward(*model, held_out_inputs(*model, seed), nullptr,
                  fixture_name(GetParam()) + " held-out " + std::to_string(seed));
  }
  // Left padding (XGLM's generation layout): positions stay the padded layout's columns. (An
  // encoder needs a real first token to pack, FallsBackWhereItCannotBeExact.)
  if (model->type() == io::ModelType::kXglm) {
    check_forward(*model, held_out_inputs(*model, 4, /*left_padded=*/true), nullptr,
                  fixture_name(GetParam()) + " held-out left-padded");
  }
}

TEST_P(PackedParity, GradientsMatchPadded) {
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  check_gradients(*model, fixture_inputs(ref), fixture_name(GetParam()));
  check_gradients(*model, held_out_inputs(*model, 3), fixture_name(GetParam()) + " held-out");
}

// Where packing cannot be exact it is not used: attention probabilities are asked for, or (XGLM)
// labels are given, whose HF loss reads the last position even where it is padding.
TEST_P(PackedParity, FallsBackWhereItCannotBeExact) {
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  auto in = fixture_inputs(ref);
  ForwardOptions o;
  o.packed = true;
  if (model->type() != io::ModelType::kXglm) {  // an encoder's first token padding: padded path
    auto left = held_out_inputs(*model, 5, /*left_padded=*/true);
    const auto out = model->forward(left, o);
    EXPECT_GT((out.last_hidden_state * (1 - real_positions(left))).abs().max().item<double>(), 0.0);
  }
  o.output_attentions = true;
  const auto with_probs = model->forward(in, o);
  const auto real = real_positions(in);
  EXPECT_GT((with_probs.last_hidden_state * (1 - real)).abs().max().item<double>(), 0.0);
  if (model->type() == io::ModelType::kXglm && ref.has("labels")) {
    in.labels = ref.get("labels");
    o.output_attentions = false;
    const auto out = model->forward(in, o);
    expect_close(out.loss, ref.get("loss"), kAtol, 1e-5, "xglm loss with packed requested");
  }
}

// The plan: rows longest first, each length group a contiguous slice of the packed rows whose
// score area is within the slack, and pad_group/pack_groups inverse to each other.
TEST(Packing, GroupsRowsByLength) {
  const std::vector<int64_t> lengths = {5, 1, 17, 9, 1, 23, 12, 23};
  const int64_t t = 23;
  auto mask = at::zeros({8, t}, at::kLong);
  for (int64_t i = 0; i < 8; ++i) mask[i].narrow(0, 0, lengths[static_cast<size_t>(i)]).fill_(1);
  const auto p = models::plan_packing(mask, /*first_token_real=*/true);
  ASSERT_TRUE(p.active());
  // sorted 23 23 17 | 12 9 | 5 | 1 1 under slack 1.3 (3 x 23^2 <= 1.3 (2 x 23^2 + 17^2), adding
  // 12 would not be; 2 x 12^2 <= 1.3 (12^2 + 9^2); 2 x 5^2 > 1.3 (5^2 + 1)).
  ASSERT_EQ(p.groups.size(), 4u);
  const std::vector<std::pair<int64_t, int64_t>> want = {{3, 23}, {2, 12}, {1, 5}, {2, 1}};
  int64_t offset = 0;
  for (size_t g = 0; g < want.size(); ++g) {
    EXPECT_EQ(p.groups[g].rows, want[g].first) << g;
    EXPECT_EQ(p.groups[g].seq, want[g].second) << g;
    EXPECT_EQ(p.groups[g].offset, offset) << g;
    offset += p.groups[g].tokens;
  }
  EXPECT_EQ(offset, mask.sum().item<int64_t>());
  EXPECT_FALSE(p.groups[3].slots.defined());  // two one-token rows: dense, no copy
  // Row 5 (23 tokens) first, then row 7, then row 2.
  EXPECT_EQ(p.index[0].item<int64_t>(), 5 * t);
  EXPECT_EQ(p.index[23].item<int64_t>(), 7 * t);
  EXPECT_EQ(p.index[46].item<int64_t>(), 2 * t);
  const auto x = at::randn({offset, 4});
  std::vector<at::Tensor> grouped;
  for (size_t g = 0; g < p.groups.size(); ++g) {
    grouped.push_back(p.pad_group(x, g));
    const auto pad = (1 - p.groups[g].mask.to(at::kFloat)).unsqueeze(-1);
    EXPECT_EQ((grouped.back() * pad).abs().sum().item<float>(), 0.0f) << g;
  }
  EXPECT_TRUE(at::equal(p.pack_groups(grouped), x));
  EXPECT_TRUE(at::equal(p.pack(p.pad(x)), x));
}

TEST(Packing, InactiveWhereItCannotApply) {
  auto full = at::ones({2, 4}, at::kLong);
  EXPECT_FALSE(models::plan_packing(full, true).active());  // no padding
  auto soft = at::full({2, 4}, 0.5);
  EXPECT_FALSE(models::plan_packing(soft, false).active());  // not 0/1
  auto empty_row = full.clone();
  empty_row[1].fill_(0);
  EXPECT_FALSE(models::plan_packing(empty_row, false).active());  // a row with no real token
  auto left = full.clone();
  left[0][0] = 0;
  EXPECT_FALSE(models::plan_packing(left, true).active());  // first token padding
  EXPECT_TRUE(models::plan_packing(left, false).active());
}

// scaled_dot_product_attention (ForwardOptions::Attention::kSdpa; on the GPU, kAuto's choice)
// against the eager arithmetic, padded and packed, on the fixture batch and the held-out shapes:
// real positions within the packed tolerances, every output finite (a left-padded XGLM row's
// padding queries attend to nothing, which the fused kernels would turn into NaN).
void check_sdpa_forward(models::Model& model, const ModelInputs& in, const Reference* ref,
                        const std::string& what) {
  const auto real = real_positions(in);
  const double rtol = tol_for(model);
  double worst = 0;
  for (const bool packed : {false, true}) {
    ForwardOptions eager;
    eager.output_hidden_states = true;
    eager.packed = packed;
    eager.attention = ForwardOptions::Attention::kEager;
    ForwardOptions fused = eager;
    fused.attention = ForwardOptions::Attention::kSdpa;
    const auto want = model.forward(in, eager);
    const auto got = model.forward(in, fused);
    const std::string run = what + (packed ? " packed" : " padded");
    ASSERT_EQ(got.hidden_states.size(), want.hidden_states.size());
    for (size_t i = 0; i < got.hidden_states.size(); ++i) {
      const std::string key = "hidden_states." + std::to_string(i);
      EXPECT_TRUE(at::isfinite(got.hidden_states[i]).all().item<bool>()) << run << " " << key;
      worst =
          std::max(worst, expect_close(got.hidden_states[i] * real, want.hidden_states[i] * real,
                                       kAtol, rtol, run + " " + key + " sdpa vs eager"));
      if (ref && ref->has(key)) {
        expect_close(got.hidden_states[i] * real, ref->get(key) * real, kAtol, rtol,
                     run + " " + key + " sdpa vs HF");
      }
    }
    EXPECT_TRUE(at::isfinite(got.logits).all().item<bool>()) << run;
    const auto mask = model.type() == io::ModelType::kXglm ? real : at::ones({1});
    worst = std::max(worst, expect_close(got.logits * mask, want.logits * mask, kAtol, rtol,
                                         run + " logits sdpa vs eager"));
  }
  std::cout << "[sdpa] " << what << " forward max|sdpa - eager| " << worst << "\n";
}

TEST_P(PackedParity, SdpaMatchesEagerForward) {
  if (!models::sdpa_available())
    GTEST_SKIP() << "libtorch 1.13 has no scaled_dot_product_attention";
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  const auto name = fixture_name(GetParam());
  check_sdpa_forward(*model, fixture_inputs(ref), &ref, name);
  check_sdpa_forward(*model, held_out_inputs(*model, 1), nullptr, name + " held-out");
  // Left padding: an encoder runs it padded (its first token is padding), XGLM packed or padded.
  check_sdpa_forward(*model, held_out_inputs(*model, 4, /*left_padded=*/true), nullptr,
                     name + " held-out left-padded");
}

TEST_P(PackedParity, SdpaMatchesEagerGradients) {
  if (!models::sdpa_available())
    GTEST_SKIP() << "libtorch 1.13 has no scaled_dot_product_attention";
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  ForwardOptions eager;
  eager.attention = ForwardOptions::Attention::kEager;
  ForwardOptions fused = packed_options();
  fused.attention = ForwardOptions::Attention::kSdpa;
  const auto name = fixture_name(GetParam());
  check_gradients(*model, fixture_inputs(ref), name + " sdpa packed vs eager padded", eager, fused);
  fused.packed = false;
  check_gradients(*model, held_out_inputs(*model, 3), name + " held-out sdpa vs eager, padded",
                  eager, fused);
}

// kAuto is eager on the CPU (reproducible parallel dropout) and on libtorch 1.13, fused on CUDA
// with PyTorch 2.x; probabilities asked for always mean eager.
TEST(Attention, KernelChoice) {
  using A = ForwardOptions::Attention;
  const c10::Device cpu(c10::kCPU), cuda(c10::kCUDA, 0);
  ForwardOptions o;
  EXPECT_FALSE(models::use_sdpa(o, cpu));
  EXPECT_EQ(models::use_sdpa(o, cuda), models::sdpa_available());
  o.attention = A::kSdpa;
  EXPECT_EQ(models::use_sdpa(o, cpu), models::sdpa_available());
  o.output_attentions = true;
  EXPECT_FALSE(models::use_sdpa(o, cpu));
  EXPECT_FALSE(models::use_sdpa(o, cuda));
  o = ForwardOptions{};
  o.attention = A::kEager;
  EXPECT_FALSE(models::use_sdpa(o, cuda));
}

// Rows that may attend to nothing are opened up, every other row untouched.
TEST(Attention, UnmaskUnattendedOnlyOpensFullyBlockedRows) {
  const double lo = std::numeric_limits<float>::lowest();
  auto bias = at::tensor({0.0, lo, lo, lo, lo, lo, 0.0, 0.0, lo}, at::kFloat).view({1, 1, 3, 3});
  const auto got = models::unmask_unattended(bias);
  const auto want =
      at::tensor({0.0, lo, lo, 0.0, 0.0, 0.0, 0.0, 0.0, lo}, at::kFloat).view({1, 1, 3, 3});
  EXPECT_TRUE(at::equal(got, want)) << got;
}

std::string param_name(const ::testing::TestParamInfo<fs::path>& info) {
  return fixture_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackedParity, ::testing::ValuesIn(model_fixture_dirs()),
                         param_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PackedParity);

}  // namespace
}  // namespace xlt::test
