// What makes a GPU wait for the host: reads of device values (`.item()`, i.e.
// aten::_local_scalar_dense). A forward on inputs collated on the host, evaluation batches, an
// optimisation step and gradient clipping must queue their work without them. Counted on the
// CPU, where the same code runs, and under XLT_TEST_DEVICE=cuda (scripts/gpu_check.sh) on the
// GPU, where the asynchronous copies and events run too; results checked against the
// one-read-at-a-time arithmetic.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#ifdef XLT_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "models/layers.h"
#include "xlt/core/error.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/evaluate.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/models/training_step.h"
#include "xlt/train/optimizer.h"

namespace xlt::test {
namespace {

// Counts aten::_local_scalar_dense calls on this thread while alive.
class ScalarReads {
 public:
  ScalarReads()
      : handle_(at::addThreadLocalCallback(at::RecordFunctionCallback(
            [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
              if (std::strcmp(fn.name(), "aten::_local_scalar_dense") == 0) ++count_;
              return nullptr;
            }))) {
    count_ = 0;
  }
  ~ScalarReads() { at::removeCallback(handle_); }
  ScalarReads(const ScalarReads&) = delete;
  ScalarReads& operator=(const ScalarReads&) = delete;
  int count() const { return count_; }

 private:
  static thread_local int count_;
  at::CallbackHandle handle_;
};
thread_local int ScalarReads::count_ = 0;

// On CUDA, makes every synchronisation PyTorch performs while alive (a blocking copy, a stream
// or device synchronise: what the counter above cannot see) throw. Nothing on the CPU.
class NoSyncs {
 public:
  explicit NoSyncs(c10::Device device) {
#ifdef XLT_WITH_CUDA
    active_ = device.is_cuda();
    if (active_) {
      c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
    }
#else
    (void)device;
#endif
  }
  ~NoSyncs() {
#ifdef XLT_WITH_CUDA
    if (active_) {
      c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    }
#endif
  }
  NoSyncs(const NoSyncs&) = delete;
  NoSyncs& operator=(const NoSyncs&) = delete;

 private:
  bool active_ = false;
};

c10::Device test_device() {
  const char* d = std::getenv("XLT_TEST_DEVICE");
  return c10::Device(d && *d ? d : "cpu");
}

// Relative tolerance of device results against the same computation run again: bit-identical on
// the CPU; on CUDA gradients may be summed in another order (atomics).
double rerun_rtol(c10::Device device) {
  return device.is_cuda() ? 1e-5 : 0.0;
}

io::ModelConfig tiny(io::ModelType type) {
  auto c = io::ModelConfig::defaults(type);
  c.vocab_size = 60;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  c.max_position_embeddings = 40;
  c.num_labels = 3;
  if (type == io::ModelType::kXlmRoberta) c.type_vocab_size = 1;
  c.raw = c.to_json();
  return c;
}

// Three rows of lengths 7, 3 and 5 (right padding), labels for a classifier or a causal LM.
models::ModelInputs batch(io::ModelType type, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  models::ModelInputs in;
  in.input_ids = at::randint(3, 60, {3, 7}, gen, at::kLong);
  in.attention_mask = at::zeros({3, 7}, at::kLong);
  const int64_t lengths[] = {7, 3, 5};
  for (int64_t r = 0; r < 3; ++r) in.attention_mask[r].narrow(0, 0, lengths[r]).fill_(1);
  in.input_ids.masked_fill_(in.attention_mask.eq(0), 1);
  if (type == io::ModelType::kBert) in.token_type_ids = at::randint(0, 2, {3, 7}, gen, at::kLong);
  in.labels =
      type == io::ModelType::kXglm ? in.input_ids.clone() : at::randint(0, 3, {3}, gen, at::kLong);
  return in;
}

// A model on the test device that has made its one-time choices (the variable-length attention
// kernel is admitted after a check that reads its results), so that counting starts after them.
std::unique_ptr<models::Model> make_model(io::ModelType type, uint64_t seed) {
  auto model = models::create_model(tiny(type), seed);
  model->to(test_device(), at::kFloat);
  models::ForwardOptions fo;
  fo.packed = true;
  auto in = batch(type, 99);
  in.labels = at::Tensor();
  model->forward(in, fo);
  return model;
}

TEST(HostReads, CounterSeesItemCalls) {
  ScalarReads reads;
  EXPECT_EQ(at::ones({2}).sum().item<double>(), 2.0);
  EXPECT_EQ(reads.count(), 1);
}

TEST(HostReads, ForwardOnHostInputsReadsNothingBack) {
  for (auto type : {io::ModelType::kBert, io::ModelType::kXlmRoberta, io::ModelType::kXglm}) {
    auto model = make_model(type, 3);
    auto in = batch(type, 11);
    for (const bool train : {false, true}) {
      model->train(train);
      for (const bool packed : {false, true}) {
        for (const bool labels : {false, true}) {
          auto inputs = in;
          if (!labels) inputs.labels = at::Tensor();
          models::ForwardOptions fo;
          fo.packed = packed;
          ScalarReads reads;
          NoSyncs no_syncs(test_device());
          const auto out = model->forward(inputs, fo);
          EXPECT_EQ(reads.count(), 0)
              << io::model_type_name(type) << (train ? " train" : " eval")
              << (packed ? " packed" : " padded") << (labels ? " with labels" : "");
          EXPECT_TRUE(out.logits.defined());
        }
      }
    }
  }
}

TEST(HostReads, InputsAreStillValidatedOnTheHost) {
  auto model = make_model(io::ModelType::kBert, 3);
  auto in = batch(io::ModelType::kBert, 5);
  in.labels = at::Tensor();
  auto bad_ids = in;
  bad_ids.input_ids = in.input_ids.clone();
  bad_ids.input_ids[1][2] = 60;
  try {
    model->forward(bad_ids, {});
    FAIL() << "an id >= vocab_size was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("ids must be in [0, 60) (vocab_size), found 60"),
              std::string::npos)
        << e.what();
  }
  auto bad_types = in;
  bad_types.token_type_ids = in.token_type_ids.clone();
  bad_types.token_type_ids[0][0] = -1;
  try {
    model->forward(bad_types, {});
    FAIL() << "a negative token type was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("token_type_ids: values must be in [0, 2) "
                                         "(type_vocab_size), found -1"),
              std::string::npos)
        << e.what();
  }
  // Float ids and token types are refused, not truncated to integers, by every architecture.
  for (auto type : {io::ModelType::kBert, io::ModelType::kXlmRoberta, io::ModelType::kXglm}) {
    auto m = make_model(type, 3);
    auto f = batch(type, 5);
    f.labels = at::Tensor();
    f.input_ids = f.input_ids.to(at::kFloat);
    try {
      m->forward(f, {});
      ADD_FAILURE() << "float input_ids were accepted by " << io::model_type_name(type);
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("input_ids: expected int64 (or int32), got Float"),
                std::string::npos)
          << e.what();
    }
  }
  auto float_types = in;
  float_types.token_type_ids = in.token_type_ids.to(at::kFloat);
  try {
    model->forward(float_types, {});
    FAIL() << "float token_type_ids were accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("token_type_ids: expected integers, got Float"),
              std::string::npos)
        << e.what();
  }
  // int32 ids (what some callers hand over) are read as int64.
  auto narrow = in;
  narrow.input_ids = in.input_ids.to(at::kInt);
  EXPECT_TRUE(at::allclose(model->forward(narrow, {}).logits, model->forward(in, {}).logits,
                           rerun_rtol(test_device()), 0.0));
}

// A plan's index tensors reach the device in one copy: they are slices of one buffer, and the
// group masks keep the caller's mask dtype.
TEST(HostReads, PackingPlanIsOneUpload) {
  auto mask = at::zeros({3, 6}, at::kFloat);
  const int64_t lengths[] = {2, 6, 5};
  for (int64_t r = 0; r < 3; ++r) mask[r].narrow(0, 0, lengths[r]).fill_(1);
  const auto device = test_device();
  const auto flash = models::plan_packing(mask, true, models::VarlenKernel::kFlash, device);
  ASSERT_TRUE(flash.active());
  EXPECT_EQ(flash.cu_seqlens.device(), device);
  EXPECT_EQ(flash.cu_seqlens.scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(flash.cu_seqlens.cpu(), at::tensor({0, 6, 11, 13}, at::kInt)));
  EXPECT_TRUE(flash.groups.empty());

  const auto grouped = models::plan_packing(mask, true, models::VarlenKernel::kNone, device);
  EXPECT_EQ(grouped.index.device(), device);
  // Sorted 6 5 | 2 (2 x 6^2 <= 1.3 (6^2 + 5^2)): the first group has padding, hence slots.
  ASSERT_EQ(grouped.groups.size(), 2u);
  ASSERT_TRUE(grouped.groups[0].slots.defined());
  const auto* buffer = grouped.index.storage().data();
  EXPECT_EQ(grouped.index.numel(), 13);
  for (const auto& g : grouped.groups) {
    EXPECT_EQ(g.mask.scalar_type(), at::kFloat);
    EXPECT_EQ(g.mask.device(), device);
    EXPECT_EQ(g.mask.sum().item<double>(), static_cast<double>(g.tokens));
    if (g.slots.defined()) {
      EXPECT_EQ(g.slots.storage().data(), buffer);
    }
  }
}

TEST(ClipGradients, DeviceStyleMatchesHostStyleBitForBit) {
  auto gen = at::detail::createCPUGenerator(4);
  std::vector<at::Tensor> base = {at::randn({5, 7}, gen), at::randn({11}, gen),
                                  at::randn({3, 2, 2}, gen)};
  for (auto& g : base) g = g.to(test_device());
  const double norm = at::stack(at::_foreach_norm(base, 2)).norm(2).item<double>();
  for (const double max_norm : {0.25 * norm, 4.0 * norm, 0.0}) {
    std::vector<at::Tensor> host, device;
    for (const auto& g : base) {
      host.push_back(g.clone());
      device.push_back(g.clone());
    }
    int host_reads = 0, device_reads = 0;
    at::Tensor host_norm, device_norm;
    {
      ScalarReads reads;
      host_norm = models::clip_gradients(host, max_norm, /*host_decides=*/true);
      host_reads = reads.count();
    }
    {
      ScalarReads reads;
      device_norm = models::clip_gradients(device, max_norm, /*host_decides=*/false);
      device_reads = reads.count();
    }
    EXPECT_EQ(device_reads, 0) << max_norm;
    EXPECT_EQ(host_reads, max_norm > 0 ? 1 : 0) << max_norm;  // the coefficient
    EXPECT_TRUE(at::equal(host_norm, device_norm)) << max_norm;
    EXPECT_NEAR(host_norm.item<double>(), norm, 1e-6 * norm);
    for (size_t i = 0; i < base.size(); ++i) {
      EXPECT_TRUE(at::equal(host[i], device[i])) << max_norm << " tensor " << i;
    }
    // Clipped to max_norm (up to torch's 1e-6 in the coefficient's denominator), else unchanged.
    const double after = at::stack(at::_foreach_norm(device, 2)).norm(2).item<double>();
    if (max_norm > 0 && max_norm < norm) {
      EXPECT_NEAR(after, max_norm, 1e-5 * max_norm);
    } else {
      for (size_t i = 0; i < base.size(); ++i) EXPECT_TRUE(at::equal(device[i], base[i]));
    }
  }
  EXPECT_FALSE(models::clip_gradients({}, 1.0, false).defined());
}

// The step reads its losses and the gradient norm in one copy at the end; on the CPU the only
// scalar read left is clipping's decision to skip an unclipped multiplication.
TEST(HostReads, OptimizationStepReadsOnceAndReportsTheSameFigures) {
  const auto device = test_device();
  auto model = make_model(io::ModelType::kBert, 9);
  auto twin = make_model(io::ModelType::kBert, 9);
  const std::vector<models::ModelInputs> micro = {batch(io::ModelType::kBert, 1),
                                                  batch(io::ModelType::kBert, 2)};
  // The figures the step must report, computed one read at a time on the twin (no dropout).
  twin->train(false);
  double want_loss = 0;
  for (const auto& mb : micro) want_loss += models::forward_backward(*twin, mb, 0.5).loss * 0.5;
  const double want_norm = models::clip_grad_norm(*twin, 0);

  train::OptimizerConfig oc;
  auto optimizer = train::make_optimizer(*model, oc);
  train::StepConfig sc;
  sc.train_mode = false;
  sc.max_grad_norm = 0.5 * want_norm;  // clips
  train::StepStats stats;
  int reads = 0;
  {
    ScalarReads counter;
    stats = train::optimization_step(*model, *optimizer, micro, sc);
    reads = counter.count();
  }
  // On the CPU clipping reads its coefficient (free there); on a GPU nothing is read.
  EXPECT_EQ(reads, device.is_cpu() ? 1 : 0);
  EXPECT_NEAR(stats.loss, want_loss, rerun_rtol(device) * want_loss);
  EXPECT_NEAR(stats.grad_norm, want_norm, rerun_rtol(device) * want_norm);
  EXPECT_EQ(stats.tokens, 2 * (7 + 3 + 5));
  EXPECT_EQ(stats.examples, 6);
}

// Evaluation collects each batch's logits after queuing the next batch: every row must still land
// in its place, as one forward per pair computes it.
TEST(HostReads, PipelinedEvaluationKeepsEveryRowInPlace) {
  auto model = make_model(io::ModelType::kBert, 21);
  auto gen = at::detail::createCPUGenerator(8);
  std::vector<text::Encoding> encodings(11);
  for (size_t i = 0; i < encodings.size(); ++i) {
    const int64_t n = 2 + static_cast<int64_t>((i * 7) % 9);
    const auto ids = at::randint(3, 60, {n}, gen, at::kLong);
    auto& e = encodings[i];
    for (int64_t k = 0; k < n; ++k) {
      e.ids.push_back(static_cast<text::TokenId>(ids[k].item<int64_t>()));
      e.token_type_ids.push_back(k >= n / 2 ? 1 : 0);
      e.attention_mask.push_back(1);
    }
  }
  eval::CollateOptions copts;
  eval::EvalOptions eo;
  eo.batch_size = 3;
  eo.progress = false;
  int64_t padded = 0;
  at::Tensor logits;
  int reads = 0;
  {
    ScalarReads counter;
    NoSyncs no_syncs(test_device());
    logits = eval::predict_logits(*model, encodings, copts, eo, &padded);
    reads = counter.count();
  }
  EXPECT_EQ(reads, 0);
  ASSERT_EQ(logits.sizes(), at::IntArrayRef({11, 3}));
  // Packed batches against one unpadded pair each: the packed tolerances (10x on CUDA, whose
  // kernels sum in other orders).
  const double tol = test_device().is_cuda() ? 1e-4 : 1e-5;
  c10::InferenceMode inference;
  for (size_t i = 0; i < encodings.size(); ++i) {
    const auto alone = model->forward(eval::collate({encodings[i]}, copts), {}).logits.cpu();
    EXPECT_TRUE(at::allclose(logits[static_cast<int64_t>(i)], alone[0], tol, tol / 10))
        << "row " << i << ": " << logits[static_cast<int64_t>(i)] << " vs " << alone[0];
  }
  // Lengths 2 + (7i mod 9) sorted longest first in batches of 3: 10 9 9 | 8 7 6 | 5 4 3 | 2 2.
  EXPECT_EQ(padded, 3 * 10 + 3 * 8 + 3 * 5 + 2 * 2);
}

}  // namespace
}  // namespace xlt::test
