// Running a sequence-classification model over NLI data: tokenisation, length-sorted dynamic
// batching (results put back in input order), softmax probabilities and predictions mapped onto
// the dataset's label ids. Used by `xlt eval`, by dev-set evaluation during `xlt finetune`, and
// by the study runner; the statistics on top live in metrics.h / results.h.
//
// Usage:
//   auto model = xlt::models::load_model(dir, {.num_labels = 3});
//   auto tok = xlt::text::load_tokenizer(dir);
//   auto map = xlt::eval::map_labels(model->config(), dataset.labels);  // by name, see below
//   xlt::eval::EvalOptions opt;   // batch 32, max_length 128, sorted
//   opt.label_map = map.model_to_data;
//   xlt::eval::EvalPredictions p = xlt::eval::evaluate_nli(*model, *tok, dataset, opt);
//   double acc = xlt::eval::accuracy(p.gold, p.pred);
//
// The model runs on its own device (Model::device()) and dtype, under inference mode, in eval()
// mode; its training flag is restored afterwards (so this is safe mid-training). Not thread-safe
// for the same Model (see model.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "xlt/data/nli.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/results.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/models/profiler.h"
#include "xlt/text/tokenizer.h"

namespace xlt::eval {

// How the classifier's output indices relate to the dataset's label ids.
struct LabelMapping {
  // model_to_data[k] = dataset label id of model output k (a permutation of 0..n-1).
  std::vector<int> model_to_data;
  // True when the model's id2label names were matched to the dataset's names (case-insensitive);
  // false when the mapping is the identity because id2label is generic (LABEL_0, ...).
  bool by_name = false;
  bool identity() const;
  // One line for logs, e.g. "model labels mapped by name: 0=contradiction->2, ...".
  std::string describe(const std::vector<std::string>& model_names) const;
};

// Maps by name when every id2label name is one of the dataset's label names (case-insensitive,
// each used once): e.g. a checkpoint with id2label {0: contradiction, 1: neutral, 2: entailment}
// has its outputs reordered to entailment/neutral/contradiction. Generic names (LABEL_i, or no
// id2label) map identically. Throws ConfigError when num_labels differs from the dataset's label
// count or the names are a mix of known and unknown ones (the message lists both sides).
LabelMapping map_labels(const io::ModelConfig& config, const data::LabelSet& labels);

struct EvalOptions {
  int64_t batch_size = 32;
  int64_t max_length = 128;  // truncation (longest_first) of premise+hypothesis, specials included
  // Sort by token length (longest first) so each batch pads little; outputs are restored to input
  // order. false = batches in dataset order (the naive baseline `xlt eval --no-sort` measures).
  bool sort_by_length = true;
  // Also cap a batch's padded size (rows * longest) at this many tokens; 0 = off.
  int64_t max_tokens = 0;
  // Unpadded execution (ForwardOptions::packed); false = compute on padding as HF does.
  bool packed = true;
  // Attention kernel (ForwardOptions::attention); kAuto = fused SDPA on CUDA only.
  models::ForwardOptions::Attention attention = models::ForwardOptions::Attention::kAuto;
  // Dataset label id for each model output (see map_labels); empty = identity.
  std::vector<int> label_map;
  bool progress = true;        // xlt::Progress on stderr
  std::string progress_label;  // default "eval <lang>"
  int tokenizer_threads = 0;   // 0 = libtorch's thread count (--threads)
  // Sharding (evaluate_nli_sharded): run only batch b of the full length-sorted plan where
  // b % shard_count == shard_index, leaving the other rows' logits 0, then hand the [n, labels]
  // logits and the padded-token count to combine_logits (a sum over the ranks) before the
  // softmax. Every pair is computed in the very batch one process would put it in, so the
  // probabilities are bit-identical to a single-process run.
  int64_t shard_index = 0;
  int64_t shard_count = 1;
  std::function<void(at::Tensor& logits, int64_t& padded_tokens)> combine_logits;
  // --profile: brackets every batch (tokenisation excluded); not owned, may be shared by the
  // languages of one run so that its window counts their batches in order.
  models::StepProfiler* profiler = nullptr;
};

// Per-example results in dataset order.
struct EvalPredictions {
  std::string lang;
  std::vector<std::string> label_names;   // the dataset's label names (probs order)
  std::vector<int64_t> index;             // NliExample::index (source record)
  std::vector<int> gold;                  // kNoLabel (-1) where the data has no label
  std::vector<int> pred;                  // dataset label id (argmax of probs)
  std::vector<std::vector<float>> probs;  // softmax over the dataset's labels, in their order
  int64_t tokens = 0;                     // real tokens fed to the model
  int64_t padded_tokens = 0;  // tokens including padding (batch rows * padded length, summed)
  int64_t truncated = 0;      // examples shortened by max_length
  double seconds = 0.0;       // wall time (tokenisation included)

  int64_t size() const { return static_cast<int64_t>(pred.size()); }
  // Rows for predictions.jsonl (results.h).
  std::vector<Prediction> to_predictions() const;
};

// DataError "FILE:LINE (lang): a pair has N tokens at --max-length L but the model's positions
// cover P ..." for the first encoding longer than the model's positions (`encodings` are
// `dataset`'s, in order). A forward would fail on it naming neither the language nor the row.
void check_pairs_fit_model(const models::Model& model, const data::NliDataset& dataset,
                           const std::vector<text::Encoding>& encodings, int64_t max_length);

// Classifies every example of `dataset`. Throws ConfigError when the model is not a
// sequence-classification model or label_map does not fit its num_labels.
EvalPredictions evaluate_nli(models::Model& model, const text::Tokenizer& tokenizer,
                             const data::NliDataset& dataset, const EvalOptions& options = {});

// Lower level: raw logits (model output order, float32, CPU) [n, num_labels] for already encoded
// inputs, in input order, batched as `options` says (max_length/label_map/tokenizer_threads are
// not used here). `padded_tokens` (optional) receives the padded token count.
at::Tensor predict_logits(models::Model& model, const std::vector<text::Encoding>& encodings,
                          const CollateOptions& collate_options, const EvalOptions& options,
                          int64_t* padded_tokens = nullptr);

}  // namespace xlt::eval
