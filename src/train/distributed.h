// Private to xlt::train: the data-parallel pieces of fine-tuning, kept out of finetune.cpp so
// that the loop only calls small hooks. docs/distributed.md states the semantics.
#pragma once

#include <cstdint>
#include <vector>

#include "xlt/data/batching.h"
#include "xlt/dist/dist.h"
#include "xlt/models/model.h"
#include "xlt/train/optimizer.h"

namespace xlt::train::detail {

// This rank's micro-batches of one epoch (DistributedSampler semantics applied to each global
// batch). The epoch's global batches are epoch_batches(...) at batch_size * world (so the
// shuffle and the length grouping are those of one process with the global batch); rank r takes
// positions r, r + world, ... of each, a short last batch padded by wrapping to a multiple of
// `world`. Global micro-batch k is thus exactly the single-process batch k (the wrapped padding
// aside), and every rank has ceil(n / (batch_size * world)) batches. world == 1 returns
// epoch_batches(...) unchanged.
std::vector<data::Batch> rank_epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                            uint64_t seed, int64_t epoch, bool group_by_length,
                                            int world, int rank);

// After backward: every gradient becomes the mean over ranks (bucketed all-reduce) and `stats`
// the global figures (loss: mean over ranks; tokens, examples: sums).
void average_gradients(models::Model& model, StepStats& stats, dist::Group& group);

// Rank 0's parameters and buffers on every rank (identical starting weights whatever the seed
// or the checkpoint each rank read).
void broadcast_weights(models::Model& model, dist::Group& group);

// Test hook: XLT_TEST_KILL_RANK=R and XLT_TEST_KILL_STEP=S make rank R SIGKILL itself after
// optimizer step S (how the tests simulate a lost node); XLT_TEST_KILL_SIGNAL=STOP makes it
// SIGSTOP itself instead (a hung node).
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
