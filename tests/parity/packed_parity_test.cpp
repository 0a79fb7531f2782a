// Unpadded (packed) execution against the padded one and against Hugging Face, data-driven over
// every fixture folder: the fixture's own batch (right-padded, mixed lengths) and held-out shapes
// drawn here (unsorted lengths, one-token rows, a full-length row, token types 0/1). Real-token
// outputs and gradients must agree within 1e-5; padding positions of a packed run are exactly
// zero, which is also how the tests know the packed path ran.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
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
  const auto grouped = p.pad_groups(x);
  ASSERT_EQ(grouped.size(), p.groups.size());
  for (size_t g = 0; g < p.groups.size(); ++g) {
    EXPECT_EQ(grouped[g].sizes(), at::IntArrayRef({p.groups[g].rows, p.groups[g].seq, 4})) << g;
    const auto pad = (1 - p.groups[g].mask.to(at::kFloat)).unsqueeze(-1);
    EXPECT_EQ((grouped[g] * pad).abs().sum().item<float>(), 0.0f) << g;
  }
  EXPECT_TRUE(at::equal(p.pack_groups(grouped), x));
  // The round trip's gradient is the identity (the split's backward reassembles every group).
  const auto xg = x.clone().requires_grad_();
  const auto w = at::randn_like(x);
  (p.pack_groups(p.pad_groups(xg)) * w).sum().backward();
  EXPECT_TRUE(at::equal(xg.grad(), w));
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

// The variable-length path (ForwardOptions::Attention::kVarlen): one call per layer over the
// packed rows. On the CPU it is the per-sequence reference; under XLT_TEST_DEVICE=cuda
// (scripts/gpu_check.sh) PyTorch's kernel that choose_varlen admits (memory-efficient for float32;
// flash for bf16). Checked against the eager arithmetic run padded (HF's) on the same device:
// real positions within the packed tolerances (10x on CUDA, as ModelParity), padding zero, every
// output finite; gradients as GradientsMatchPadded; plus (CUDA) the model in bf16 against the
// float32 eager run within bf16's resolution.
c10::Device varlen_test_device() {
  const char* d = std::getenv("XLT_TEST_DEVICE");
  return c10::Device(d && *d ? d : "cpu");
}

void check_varlen_forward(models::Model& model, const ModelInputs& in, const std::string& what,
                          double factor) {
  ForwardOptions eager;
  eager.output_hidden_states = true;
  eager.attention = ForwardOptions::Attention::kEager;
  ForwardOptions varlen = eager;
  varlen.packed = true;
  varlen.attention = ForwardOptions::Attention::kVarlen;
  const auto want = model.forward(in, eager);
  const auto got = model.forward(in, varlen);
  const auto real = real_positions(in);
  const double rtol = tol_for(model) * factor;
  double worst = 0;
  ASSERT_EQ(got.hidden_states.size(), want.hidden_states.size());
  for (size_t i = 0; i < got.hidden_states.size(); ++i) {
    const std::string key = what + " hidden_states." + std::to_string(i);
    EXPECT_TRUE(at::isfinite(got.hidden_states[i]).all().item<bool>()) << key;
    EXPECT_EQ((got.hidden_states[i] * (1 - real)).abs().max().item<double>(), 0.0) << key;
    worst = std::max(worst, expect_close(got.hidden_states[i] * real, want.hidden_states[i] * real,
                                         kAtol * factor, rtol, key + " varlen vs eager padded"));
  }
  const auto mask = model.type() == io::ModelType::kXglm ? real : at::ones({1}, real.options());
  worst = std::max(worst, expect_close(got.logits * mask, want.logits * mask, kAtol * factor, rtol,
                                       what + " logits varlen vs eager padded"));
  std::cout << "[varlen] " << what << " forward max|varlen - eager| " << worst << "\n";
}

TEST_P(PackedParity, VarlenMatchesEager) {
  const auto device = varlen_test_device();
  const double factor = device.is_cpu() ? 1.0 : 10.0;
  const auto ref = load_reference(GetParam());
  auto model = models::load_model(GetParam());
  model->to(device, at::kFloat);
  const auto name = fixture_name(GetParam());
  const int64_t head_dim = model->config().hidden_size / model->config().num_attention_heads;
  ForwardOptions varlen;
  varlen.packed = true;
  varlen.attention = ForwardOptions::Attention::kVarlen;
  const auto kernel = models::choose_varlen(varlen, device, at::kFloat, head_dim);
  std::cout << "[varlen] " << name << " on " << device << ": " << models::varlen_kernel_name(kernel)
            << " kernel\n";
  ASSERT_NE(kernel, models::VarlenKernel::kNone) << "no variable-length kernel on " << device;
  if (device.is_cpu()) {
    EXPECT_EQ(kernel, models::VarlenKernel::kReference);
  }

  auto on_device = [&](ModelInputs in) {
    for (auto* t : {&in.input_ids, &in.attention_mask, &in.token_type_ids, &in.labels}) {
      if (t->defined()) *t = t->to(device);
    }
    return in;
  };
  check_varlen_forward(*model, on_device(fixture_inputs(ref)), name, factor);
  check_varlen_forward(*model, on_device(held_out_inputs(*model, 1)), name + " held-out", factor);
  if (model->type() == io::ModelType::kXglm) {
    check_varlen_forward(*model, on_device(held_out_inputs(*model, 4, /*left_padded=*/true)),
                         name + " held-out left-padded", factor);
  }
  if (device.is_cpu()) {  // gradients through the reference's per-sequence loop
    ForwardOptions eager;
    eager.attention = ForwardOptions::Attention::kEager;
    check_gradients(*model, held_out_inputs(*model, 3), name + " varlen vs eager padded", eager,
                    varlen);
  }
}

// On CUDA: gradients through the kernel's backward, and the bf16 model (flash attention) against
// float32 eager.
TEST_P(PackedParity, VarlenKernelOnCuda) {
  const auto device = varlen_test_device();
  if (!device.is_cuda()) GTEST_SKIP() << "runs under XLT_TEST_DEVICE=cuda (scripts/gpu_check.sh)";
  auto model = models::load_model(GetParam());
  model->to(device, at::kFloat);
  const auto name = fixture_name(GetParam());
  auto in = held_out_inputs(*model, 3);
  for (auto* t : {&in.input_ids, &in.attention_mask, &in.token_type_ids})
    if (t->defined()) *t = t->to(device);
  ForwardOptions eager;
  eager.attention = ForwardOptions::Attention::kEager;
  ForwardOptions varlen = packed_options();
  varlen.attention = ForwardOptions::Attention::kVarlen;
  // Gradients copied to the CPU after each run.
  auto grads = [&](const ForwardOptions& o) {
    models::zero_grad(*model);
    const auto out = model->forward(in, o);
    const auto real = real_positions(in);
    at::manual_seed(11);
    const auto w = at::randn(out.last_hidden_state.sizes()).to(device);
    ((out.last_hidden_state * w * real).sum() * 1e-2).backward();
    std::vector<at::Tensor> g;
    for (const auto& [n, p] : model->named_parameters())
      g.push_back(p.grad().defined() ? p.grad().to(at::kCPU).clone() : at::zeros_like(p, at::kCPU));
    return g;
  };
  const auto want = grads(eager);
  const auto got = grads(varlen);
  double global = 0;
  for (const auto& g : want) global = std::max(global, g.abs().max().item<double>());
  for (size_t i = 0; i < want.size(); ++i) {
    const double scale = std::max(want[i].abs().max().item<double>(), 1e-30);
    expect_close(got[i], want[i], 10 * (kGradRtol * scale + kGradFloor * global), 0.0,
                 name + " varlen kernel gradient " + std::to_string(i));
  }

  const auto reference = model->forward(in, eager).last_hidden_state.detach();
  model->to(device, at::kBFloat16);
  const int64_t head_dim = model->config().hidden_size / model->config().num_attention_heads;
  const auto kernel = models::choose_varlen(varlen, device, at::kBFloat16, head_dim);
  std::cout << "[varlen] " << name << " bf16: " << models::varlen_kernel_name(kernel)
            << " kernel\n";
  EXPECT_NE(kernel, models::VarlenKernel::kNone);
  const auto real = real_positions(in);
  const auto bf16 = model->forward(in, varlen).last_hidden_state.to(at::kFloat);
  const double bound = 3e-2 * std::max(1.0, reference.abs().max().item<double>());
  expect_close(bf16 * real, reference * real, bound, 0.0, name + " bf16 varlen vs float32 eager");
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

// The variable-length path on the CPU: the reference loop only when asked for by name; a varlen
// plan carries the sequence offsets in packed order and no length groups.
TEST(Attention, VarlenChoiceAndPlan) {
  using A = ForwardOptions::Attention;
  const c10::Device cpu(c10::kCPU);
  ForwardOptions o;
  EXPECT_EQ(models::choose_varlen(o, cpu, at::kFloat, 64), models::VarlenKernel::kNone);
  o.attention = A::kSdpa;
  EXPECT_EQ(models::choose_varlen(o, cpu, at::kFloat, 64), models::VarlenKernel::kNone);
  o.attention = A::kVarlen;
  EXPECT_EQ(models::choose_varlen(o, cpu, at::kFloat, 64), models::VarlenKernel::kReference);
  EXPECT_TRUE(models::use_sdpa(o, cpu) == models::sdpa_available());  // its padded batches
  o.output_attentions = true;
  EXPECT_EQ(models::choose_varlen(o, cpu, at::kFloat, 64), models::VarlenKernel::kNone);

  auto mask = at::zeros({3, 6}, at::kLong);
  for (int64_t i = 0; i < 3; ++i) mask[i].narrow(0, 0, std::vector<int64_t>{2, 6, 3}[i]).fill_(1);
  const auto p = models::plan_packing(mask, true, models::VarlenKernel::kReference);
  ASSERT_TRUE(p.active());
  EXPECT_TRUE(p.groups.empty());
  EXPECT_EQ(p.offsets, (std::vector<int64_t>{0, 6, 9, 11}));  // rows 1, 2, 0: longest first
  EXPECT_EQ(p.max_seqlen, 6);
  EXPECT_FALSE(p.cu_seqlens.defined());  // only the CUDA kernels read it
  EXPECT_EQ(p.index[6].item<int64_t>(), 2 * 6);
  const auto grouped = models::plan_packing(mask, true);
  EXPECT_FALSE(grouped.groups.empty());
  EXPECT_EQ(grouped.offsets, p.offsets);
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
