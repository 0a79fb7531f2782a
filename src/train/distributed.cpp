// Data-parallel hooks of the fine-tuning loop: per-rank epoch shards, gradient averaging,
// weight broadcast, bf16 autocast and the fault-injection hook the tests use.
#include "train/distributed.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "train/train_data.h"
#include "xlt/core/error.h"

namespace xlt::train::detail {

std::vector<data::Batch> rank_epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                            uint64_t seed, int64_t epoch, bool group_by_length,
                                            int world, int rank) {
  if (world <= 1) return epoch_batches(lengths, batch_size, seed, epoch, group_by_length);
  const auto global = epoch_batches(lengths, batch_size * world, seed, epoch, group_by_length);
  const size_t w = static_cast<size_t>(world);
  std::vector<data::Batch> out;
  out.reserve(global.size());
  for (const auto& g : global) {
    // A short batch is padded by wrapping to a multiple of the world size.
    const size_t padded = (g.size() + w - 1) / w * w;
    data::Batch mine;
    for (size_t p = static_cast<size_t>(rank); p < padded; p += w) mine.push_back(g[p % g.size()]);
    out.push_back(std::move(mine));
  }
  return out;
}

void average_gradients(models::Model& model, StepStats& stats, dist::Group& group) {
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) {
    if (p.requires_grad() && p.grad().defined()) grads.push_back(p.grad());
  }
  group.all_reduce_mean(grads);
  auto s = at::tensor(
      {stats.loss, static_cast<double>(stats.tokens), static_cast<double>(stats.examples)},
      at::dtype(at::kDouble));
  if (!grads.empty() && grads.front().device().is_cuda()) s = s.to(grads.front().device());
  group.all_reduce_sum(s);
  s = s.to(at::kCPU);
  const auto* v = s.data_ptr<double>();
  stats.loss = v[0] / group.size();
  stats.tokens = static_cast<int64_t>(v[1]);
  stats.examples = static_cast<int64_t>(v[2]);
}

void broadcast_weights(models::Model& model, dist::Group& group) {
  std::vector<at::Tensor> all;
  {
    at::NoGradGuard no_grad;
    for (const auto& p : model.module().parameters()) all.push_back(p.data());
    for (const auto& b : model.module().buffers()) all.push_back(b);
  }
  group.broadcast(all, 0);
}

void maybe_kill_for_test(int rank, int64_t step) {
  const char* r = std::getenv("XLT_TEST_KILL_RANK");
  const char* s = std::getenv("XLT_TEST_KILL_STEP");
  if (!r || !s || std::to_string(rank) != r || std::to_string(step) != s) return;
  // XLT_TEST_KILL_SIGNAL=STOP freezes the rank instead: a hung peer, found only by the timeout.
  const char* sig = std::getenv("XLT_TEST_KILL_SIGNAL");
  std::raise(sig && std::string(sig) == "STOP" ? SIGSTOP : SIGKILL);
}

Bf16Autocast::Bf16Autocast(bool enabled, const c10::Device& device) : enabled_(enabled) {
  if (!enabled_) return;
  if (!device.is_cuda()) {
    throw UsageError("--bf16 is for training on a GPU (--device cuda); on CPU, train in float32");
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
#endif
}

Bf16Autocast::~Bf16Autocast() {
  if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
  at::autocast::set_enabled(false);
#endif
  at::autocast::clear_cache();
}

}  // namespace xlt::train::detail
