// Data-parallel hooks of the fine-tuning loop: per-rank epoch shards, gradient averaging,
// weight broadcast, bf16 autocast and the fault-injection hook the tests use.
#include "train/distributed.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <string>

#include "train/train_data.h"
#include "xlt/core/error.h"

namespace xlt::train::detail {

std::vector<data::Batch> rank_epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                            uint64_t seed, int64_t epoch, bool group_by_length,
                                            int world, int rank, int64_t max_tokens) {
  if (world <= 1)
    return epoch_batches(lengths, batch_size, seed, epoch, group_by_length, max_tokens);
  const auto global =
      epoch_batches(lengths, batch_size * world, seed, epoch, group_by_length, max_tokens * world);
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

namespace {

// The step's figures over all ranks: mean loss, summed tokens and examples.
void reduce_stats(StepStats& stats, distributed::Group& group, const c10::Device& device) {
  auto s = at::tensor(
      {stats.loss, static_cast<double>(stats.tokens), static_cast<double>(stats.examples)},
      at::dtype(at::kDouble));
  if (device.is_cuda()) s = s.to(device);
  group.all_reduce_sum(s);
  s = s.to(at::kCPU);
  const auto* v = s.data_ptr<double>();
  stats.loss = v[0] / group.size();
  stats.tokens = static_cast<int64_t>(v[1]);
  stats.examples = static_cast<int64_t>(v[2]);
}

}  // namespace

void average_gradients(models::Model& model, StepStats& stats, distributed::Group& group) {
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) {
    if (p.requires_grad() && p.grad().defined()) grads.push_back(p.grad());
  }
  group.all_reduce_mean(grads);
  reduce_stats(stats, group, grads.empty() ? c10::Device(c10::kCPU) : grads.front().device());
}

OverlappedGradReducer::OverlappedGradReducer(models::Model& model, distributed::Group& group,
                                             int64_t bucket_bytes, int64_t first_bucket_bytes)
    : group_(group) {
  std::vector<at::Tensor> params;
  for (const auto& p : model.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  std::reverse(params.begin(), params.end());
  bucket_of_.resize(params.size());
  int64_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const int64_t cap = buckets_.size() <= 1 ? first_bucket_bytes : bucket_bytes;
    const bool fits = !buckets_.empty() && bytes + static_cast<int64_t>(p.nbytes()) <= cap;
    const bool same_kind =
        !buckets_.empty() &&
        slots_[buckets_.back().slots.front()].param.scalar_type() == p.scalar_type() &&
        slots_[buckets_.back().slots.front()].param.device() == p.device();
    if (buckets_.empty() || !fits || !same_kind) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Slot slot;
    slot.param = p;
    slot.numel = p.numel();
    slots_.push_back(slot);
    buckets_.back().slots.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    bytes += static_cast<int64_t>(p.nbytes());
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (size_t k : b.slots) {
      slots_[k].offset = n;
      n += slots_[k].numel;
    }
    const auto& first = slots_[b.slots.front()].param;
    b.flat = at::zeros({n}, at::dtype(first.scalar_type()).device(first.device()));
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    const unsigned h =
        slots_[i].param.register_hook([this, i](const at::Tensor& grad) { on_grad(i, grad); });
    hooks_.emplace_back(slots_[i].param, h);
  }
}

OverlappedGradReducer::~OverlappedGradReducer() {
  for (auto& [param, h] : hooks_) param.remove_hook(h);
}

void OverlappedGradReducer::before_micro_batch(bool last) {
  armed_ = last;
  if (!last) return;
  next_ = 0;
  for (auto& b : buckets_) {
    b.missing = b.slots.size();
    b.work.reset();
  }
  for (auto& s : slots_) s.filled = false;
}

void OverlappedGradReducer::on_grad(size_t i, const at::Tensor& grad) {
  if (!armed_) return;
  Slot& s = slots_[i];
  if (s.filled) return;
  Bucket& b = buckets_[bucket_of_[i]];
  at::NoGradGuard no_grad;
  at::Tensor view = b.flat.narrow(0, s.offset, s.numel);
  // What .grad will hold once autograd has accumulated this backward's contribution.
  const at::Tensor before = s.param.grad();
  if (before.defined()) {
    at::add_out(view, before.reshape({-1}), grad.reshape({-1}));
  } else {
    view.copy_(grad.reshape({-1}));
  }
  s.filled = true;
  if (--b.missing == 0) launch_ready();
}

void OverlappedGradReducer::launch_ready() {
  while (next_ < buckets_.size() && buckets_[next_].missing == 0) {
    buckets_[next_].work = group_.all_reduce_sum_async(buckets_[next_].flat);
    ++next_;
  }
}

void OverlappedGradReducer::finish(StepStats& stats) {
  armed_ = false;
  at::NoGradGuard no_grad;
  // Parameters without a gradient in this step (unused by the graph) reduce what .grad holds.
  for (auto& b : buckets_) {
    if (b.missing == 0) continue;
    for (size_t k : b.slots) {
      Slot& s = slots_[k];
      if (s.filled) continue;
      at::Tensor view = b.flat.narrow(0, s.offset, s.numel);
      if (s.param.grad().defined()) {
        view.copy_(s.param.grad().reshape({-1}));
      } else {
        view.zero_();
      }
      s.filled = true;
    }
    b.missing = 0;
  }
  launch_ready();
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
    b.flat.div_(group_.size());
    for (size_t k : b.slots) {
      Slot& s = slots_[k];
      if (!s.param.grad().defined()) continue;  // as average_gradients: no gradient, no update
      s.param.mutable_grad().view({-1}).copy_(b.flat.narrow(0, s.offset, s.numel));
    }
  }
  reduce_stats(stats, group_,
               buckets_.empty() ? c10::Device(c10::kCPU) : buckets_[0].flat.device());
}

void broadcast_weights(models::Model& model, distributed::Group& group) {
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
  const std::string sig =
      std::getenv("XLT_TEST_KILL_SIGNAL") ? std::getenv("XLT_TEST_KILL_SIGNAL") : "";
  std::raise(sig == "STOP" ? SIGSTOP : sig == "INT" ? SIGINT : sig == "TERM" ? SIGTERM : SIGKILL);
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
