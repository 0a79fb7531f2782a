// Private to xlt::train: the data-parallel pieces of fine-tuning, kept out of finetune.cpp so
// that the loop only calls small hooks. docs/distributed.md states the semantics.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "xlt/data/batching.h"
#include "xlt/distributed/distributed.h"
#include "xlt/models/model.h"
#include "xlt/train/optimizer.h"

namespace xlt::train::detail {

// This rank's micro-batches of one epoch (DistributedSampler semantics applied to each global
// batch). The epoch's global batches are epoch_batches(...) at batch_size * world (so the
// shuffle and the length grouping are those of one process with the global batch); rank r takes
// positions r, r + world, ... of each, a short last batch padded by wrapping to a multiple of
// `world`. Global micro-batch k is thus exactly the single-process batch k (the wrapped padding
// aside), and every rank has ceil(n / (batch_size * world)) batches. world == 1 returns
// epoch_batches(...) unchanged. With max_tokens > 0 the global batches hold max_tokens * world
// tokens, so each rank's share is about max_tokens.
std::vector<data::Batch> rank_epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                            uint64_t seed, int64_t epoch, bool group_by_length,
                                            int world, int rank, int64_t max_tokens = 0);

// After backward: every gradient becomes the mean over ranks (bucketed all-reduce) and `stats`
// the global figures (loss: mean over ranks; tokens, examples: sums).
void average_gradients(models::Model& model, StepStats& stats, distributed::Group& group);

// The gradient average of average_gradients, overlapped with the backward pass (DDP's scheme on
// public libtorch API: Tensor::register_hook, which libtorch 1.13 and 2.x both have). Parameters
// are grouped into buckets in reverse order — the order backward produces their gradients — the
// first ~1 MB (communication starts early), the others ~`bucket_bytes`. On the last micro-batch
// of a step a hook on each parameter copies its final gradient (.grad so far plus this
// backward's contribution) into its bucket; a bucket whose gradients are all there starts its
// asynchronous all-reduce at once, strictly in bucket order, so every rank starts the same
// collectives in the same order whatever order autograd runs the hooks in. Earlier micro-batches
// only accumulate (DDP's no_sync). The buffers hold exactly the sums average_gradients reduces,
// so both give the same gradients. Not thread-safe; one per model.
class OverlappedGradReducer {
 public:
  OverlappedGradReducer(models::Model& model, distributed::Group& group,
                        int64_t bucket_bytes = 25 << 20, int64_t first_bucket_bytes = 1 << 20);
  ~OverlappedGradReducer();  // removes the hooks
  OverlappedGradReducer(const OverlappedGradReducer&) = delete;
  OverlappedGradReducer& operator=(const OverlappedGradReducer&) = delete;

  // Before each micro-batch: `last` arms the hooks for its backward.
  void before_micro_batch(bool last);
  // After the last backward: starts the buckets whose parameters got no gradient in this step
  // (from .grad or zeros), waits for every bucket and writes the means into .grad; then
  // reduces `stats` as average_gradients does.
  void finish(StepStats& stats);
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Slot {
    at::Tensor param;
    int64_t offset = 0, numel = 0;
    bool filled = false;
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> slots;
    size_t missing = 0;
    std::unique_ptr<distributed::Pending> work;
  };
  void on_grad(size_t slot, const at::Tensor& grad);
  void launch_ready();

  distributed::Group& group_;
  std::vector<Slot> slots_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<at::Tensor, unsigned>> hooks_;
  size_t next_ = 0;  // first bucket not started yet
  bool armed_ = false;
};

// Rank 0's parameters and buffers on every rank (identical starting weights whatever the seed
// or the checkpoint each rank read).
void broadcast_weights(models::Model& model, distributed::Group& group);

// Test hook: XLT_TEST_KILL_RANK=R and XLT_TEST_KILL_STEP=S make rank R SIGKILL itself after
// optimizer step S (how the tests simulate a lost node; a single process is rank 0);
// XLT_TEST_KILL_SIGNAL=STOP makes it SIGSTOP itself instead (a hung node), INT or TERM sends it
// that signal (a Ctrl-C or a scheduler's stop at a known step).
void maybe_kill_for_test(int rank, int64_t step);

// bf16 autocast over a scope on CUDA (UsageError on CPU, or without a CUDA libtorch).
class Bf16Autocast {
 public:
  Bf16Autocast(bool enabled, const c10::Device& device);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool enabled_ = false;
};

}  // namespace xlt::train::detail
