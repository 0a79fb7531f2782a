// English-only NLI fine-tuning with Hugging Face Trainer semantics (`xlt finetune`): AdamW with
// HF's no-decay grouping, linear warm-up/decay, global-norm clipping, dropout on, seeded
// length-grouped batches, dev evaluation with best/last checkpoints in HF layout, exact resume,
// and log.jsonl / train_config.json / results.json in the output folder. docs/finetune.md
// describes the recipe, the output folder and the resume guarantees.
//
// Usage:
//   xlt::train::FinetuneConfig c;
//   c.model = "bert-base-multilingual-cased";
//   c.train_specs = {"en=multinli/train.jsonl"};
//   c.dev_specs = {"en=xnli/dev-en.tsv"};
//   c.out_dir = "runs/mbert-en";
//   auto r = xlt::train::finetune(c);   // runs/mbert-en/{best,last,state,log.jsonl,...}
//
// Errors in the inputs (missing or unparsable data, unlabelled rows, labels the head cannot
// produce, an occupied output folder, resume mismatches) are thrown as xlt::InputError subclasses
// before the first training step. Not thread-safe (it drives libtorch's global generator).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "xlt/data/nli.h"
#include "xlt/data/spec.h"
#include "xlt/models/profiler.h"
#include "xlt/train/optimizer.h"

namespace xlt::train {

struct FinetuneConfig {
  // Inputs.
  std::string model;      // checkpoint folder or hub model id (resolved in the local HF cache)
  std::string tokenizer;  // tokenizer folder/file; empty = the model folder
  std::vector<std::string> train_specs;  // --train: LANG=PATH or PATH (see xlt/data/spec.h)
  std::vector<std::string> dev_specs;    // --dev: the English dev set; empty = no model selection
  std::vector<std::string> langs;        // --langs, for files with a language column
  data::NliFormat format = data::NliFormat::kAuto;
  bool skip_bad_rows = false;
  std::filesystem::path out_dir;

  // Optimisation (HF TrainingArguments names and defaults where they exist).
  int64_t epochs = 3;
  double lr = 2e-5;
  int64_t batch_size = 32;  // per micro-batch
  // > 0: micro-batches of at most this many padded tokens (rows * longest) instead of
  // batch_size rows (data::token_budget_batches); per rank under data parallelism.
  int64_t max_tokens = 0;
  // Unpadded execution (models::ForwardOptions::packed); false computes on padding as HF does.
  bool packed = true;
  // Attention kernel (models::ForwardOptions::attention); kAuto = fused SDPA on CUDA only.
  models::ForwardOptions::Attention attention = models::ForwardOptions::Attention::kAuto;
  int64_t grad_accum = 1;
  int64_t max_length = 128;
  double warmup_ratio = 0;
  int64_t warmup_steps = 0;  // > 0 overrides warmup_ratio
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;  // <= 0 = no clipping
  uint64_t seed = 42;
  int64_t samples = 0;  // > 0: seeded subset of the training data
  // Seed and method of that subset (data::subsample); sample_seed < 0 = `seed`.
  int64_t sample_seed = -1;
  data::Sampling sampling = data::Sampling::kXlt;
  int64_t max_steps = 0;  // > 0: total optimizer steps (overrides epochs; sets the schedule)
  bool group_by_length = true;
  bool new_head = false;  // discard a classification head in the checkpoint
  ParamGrouping grouping = ParamGrouping::kHfNoDecay;

  // Bookkeeping.
  int64_t eval_every = 0;  // dev evaluation every N steps; 0 = at the end of every epoch
  int64_t log_every = 10;
  int64_t save_every = 500;  // resumable state every N steps (always at the end); 0 = end only
  int64_t stop_after = 0;    // > 0: stop after this global step (state saved), schedule unchanged
  bool resume = false;
  bool overwrite = false;  // start over in an out_dir that holds a previous run
  // A run managed by its caller (the study): on --resume model, tokenizer, train and dev are left
  // out of the comparison with the saved run, as the caller has checked their contents itself
  // (the study's fingerprints are file digests, so its folder may be moved between the two runs);
  // and a lost peer's failure keeps the caller's advice on how to rerun.
  bool managed_by_caller = false;
  std::string device = "cpu";
  bool bf16 = false;  // bf16 autocast for training (CUDA only)
  // Data-parallel runs: all-reduce gradient buckets during the backward pass (false = after it;
  // the same gradients either way, see docs/distributed.md).
  bool overlap_comm = true;
  // Data-parallel runs (see docs/distributed.md): seconds any collective may wait for a peer.
  int64_t dist_timeout = 300;
  int64_t eval_batch_size = 64;
  bool progress = true;
  // --profile: a window of training steps through libtorch's profiler (rank 0 under data
  // parallelism); its device is `device`. Steps count from the start of this invocation.
  models::ProfileOptions profile;
};

struct FinetuneResult {
  int64_t steps = 0;        // global step reached
  int64_t total_steps = 0;  // planned
  bool stopped = false;     // stopped by stop_after (or a signal) before total_steps
  int interrupted_by = 0;   // SIGINT/SIGTERM that stopped the run at a safe point (state saved)
  int64_t best_step = -1;   // -1 without a dev set
  double best_accuracy = std::numeric_limits<double>::quiet_NaN();
  double last_accuracy = std::numeric_limits<double>::quiet_NaN();
  int64_t train_tokens = 0;  // real tokens processed in this invocation
  double train_seconds = 0;  // time in training steps in this invocation
  double tokens_per_second() const {
    return train_seconds > 0 ? static_cast<double>(train_tokens) / train_seconds : 0.0;
  }
};

// Validates the configuration (UsageError for impossible values).
void validate(const FinetuneConfig& config);

// The options as JSON (written to train_config.json; the keys that change the trained weights
// are compared on --resume).
nlohmann::json config_to_json(const FinetuneConfig& config);

// Under a distributed launch (RANK/WORLD_SIZE or Slurm variables, see
// xlt/distributed/distributed.h) every rank calls this: each trains on its shard of the data with
// `batch_size` per rank, and rank 0 alone writes the output folder.
FinetuneResult finetune(const FinetuneConfig& config);

}  // namespace xlt::train
