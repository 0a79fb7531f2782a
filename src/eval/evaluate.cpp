// NLI evaluation: encode pairs, run the classifier over length-sorted dynamic batches, put the
// outputs back in dataset order, and map the model's output indices onto the dataset's labels.
#include "xlt/eval/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/Event.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <numeric>
#include <optional>
#include <string>
#include <thread>

#include "core/strings.h"
#include "xlt/core/error.h"
#include "xlt/core/progress.h"
#include "xlt/data/batching.h"

namespace xlt::eval {
using xlt::detail::ascii_lower;
namespace {

// HF's placeholder names for configs saved without id2label.
bool is_generic_label(const std::string& name, int64_t id) {
  return name == "LABEL_" + std::to_string(id);
}

// A batch's logits on their way to the host as float32: from a CUDA device by an asynchronous
// copy into pinned memory, which wait() waits for alone (not for work queued after it).
class HostLogits {
 public:
  HostLogits(const at::Tensor& logits, const data::Batch& rows) : batch(&rows) {
    if (!logits.is_cuda()) {
      values = logits.to(at::kCPU, at::kFloat);
      return;
    }
    values = at::empty(logits.sizes(), at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
    values.copy_(logits.to(at::kFloat), /*non_blocking=*/true);
    copied_.emplace(c10::DeviceType::CUDA);
    copied_->record(c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStream(logits.device()));
  }
  void wait() const {
    if (!copied_) return;
    // Event::synchronize is not in every libtorch this builds against; query is.
    while (!copied_->query()) std::this_thread::yield();
  }
  at::Tensor values;  // [rows, labels] on the host; complete after wait()
  const data::Batch* batch;

 private:
  std::optional<c10::Event> copied_;
};

// Restores a model's training flag on scope exit (also when a forward throws).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(models::Model& m) : model_(m), was_training_(m.is_training()) {
    model_.eval();
  }
  ~EvalModeGuard() {
    if (was_training_) model_.train(true);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  models::Model& model_;
  bool was_training_;
};

std::vector<data::Batch> plan_batches(const std::vector<int64_t>& lengths,
                                      const EvalOptions& options) {
  if (options.batch_size < 1)
    throw UsageError("batch size must be >= 1, got " + std::to_string(options.batch_size));
  if (options.sort_by_length)
    return data::length_sorted_batches(lengths, options.batch_size, options.max_tokens);
  return data::input_order_batches(lengths, options.batch_size, options.max_tokens);
}

}  // namespace

bool LabelMapping::identity() const {
  for (size_t k = 0; k < model_to_data.size(); ++k)
    if (model_to_data[k] != static_cast<int>(k)) return false;
  return true;
}

std::string LabelMapping::describe(const std::vector<std::string>& model_names) const {
  if (!by_name) return "model labels used in order (id2label has no label names)";
  std::string s =
      identity() ? "model labels match the data's order by name:" : "model labels mapped by name:";
  for (size_t k = 0; k < model_to_data.size(); ++k) {
    s += (k ? ", " : " ") + std::to_string(k);
    if (k < model_names.size()) s += "=" + model_names[k];
    s += "->" + std::to_string(model_to_data[k]);
  }
  return s;
}

LabelMapping map_labels(const io::ModelConfig& config, const data::LabelSet& labels) {
  const int64_t n = config.num_labels;
  std::string model_names, data_names;
  for (int64_t k = 0; k < n; ++k) {
    auto it = config.id2label.find(k);
    model_names +=
        (k ? ", " : "") + std::to_string(k) + "=" +
        (it == config.id2label.end() ? std::string("LABEL_") + std::to_string(k) : it->second);
  }
  for (int i = 0; i < labels.size(); ++i) data_names += (i ? ", " : "") + labels.names[i];
  if (n != labels.size()) {
    throw ConfigError("the model has " + std::to_string(n) + " labels (" + model_names +
                      ") but the data has " + std::to_string(labels.size()) + " (" + data_names +
                      ")");
  }
  LabelMapping m;
  m.model_to_data.assign(static_cast<size_t>(n), -1);
  int generic = 0, named = 0;
  std::vector<char> used(static_cast<size_t>(n), 0);
  for (int64_t k = 0; k < n; ++k) {
    auto it = config.id2label.find(k);
    if (it == config.id2label.end() || is_generic_label(it->second, k)) {
      ++generic;
      continue;
    }
    for (int i = 0; i < labels.size(); ++i) {
      if (!used[i] && ascii_lower(labels.names[i]) == ascii_lower(it->second)) {
        m.model_to_data[k] = i;
        used[i] = 1;
        ++named;
        break;
      }
    }
  }
  if (generic == n) {
    std::iota(m.model_to_data.begin(), m.model_to_data.end(), 0);
    return m;
  }
  if (named != n) {
    throw ConfigError("cannot map the model's labels (id2label: " + model_names +
                      ") onto the data's labels (" + data_names +
                      "): every id2label name must be one of the data's labels, or all generic "
                      "LABEL_i");
  }
  m.by_name = true;
  return m;
}

std::vector<Prediction> EvalPredictions::to_predictions() const {
  std::vector<Prediction> rows(pred.size());
  for (size_t i = 0; i < pred.size(); ++i) {
    rows[i].lang = lang;
    rows[i].index = index[i];
    rows[i].gold = gold[i];
    rows[i].pred = pred[i];
    rows[i].probs = probs[i];
  }
  return rows;
}

at::Tensor predict_logits(models::Model& model, const std::vector<text::Encoding>& encodings,
                          const CollateOptions& collate_options, const EvalOptions& options,
                          int64_t* padded_tokens) {
  if (model.kind() != models::ModelKind::kSequenceClassification) {
    throw ConfigError("evaluation needs a sequence-classification model; " +
                      io::model_type_name(model.type()) + " here is a causal LM");
  }
  const auto n = static_cast<int64_t>(encodings.size());
  if (options.shard_count < 1 || options.shard_index < 0 ||
      options.shard_index >= options.shard_count) {
    throw UsageError("evaluation shard " + std::to_string(options.shard_index) + " of " +
                     std::to_string(options.shard_count) + " does not exist");
  }
  const bool sharded = options.shard_count > 1;
  at::Tensor out = sharded ? at::zeros({n, model.num_labels()}, at::kFloat)
                           : at::empty({n, model.num_labels()}, at::kFloat);
  if (padded_tokens) *padded_tokens = 0;
  if (n == 0) return out;
  std::vector<data::Batch> batches = plan_batches(encoding_lengths(encodings), options);
  if (sharded) {
    std::vector<data::Batch> mine;
    for (size_t b = static_cast<size_t>(options.shard_index); b < batches.size();
         b += static_cast<size_t>(options.shard_count)) {
      mine.push_back(std::move(batches[b]));
    }
    batches.swap(mine);
  }
  int64_t rows = 0;
  for (const auto& batch : batches) rows += static_cast<int64_t>(batch.size());

  EvalModeGuard mode(model);
  c10::InferenceMode inference;
  // Collated on the host, where the forward reads the masks to plan packing; it moves the rest.
  const CollateOptions& copt = collate_options;
  Progress progress(options.progress_label.empty() ? "eval" : options.progress_label, rows, "pairs",
                    options.progress);
  // A batch's logits are collected after the next batch's forward has been queued: on a GPU the
  // device works through that batch while the host waits for these, files them and collates the
  // one after (nothing in a forward waits for the device, see models::to_device).
  std::optional<HostLogits> pending;
  auto collect = [&] {
    pending->wait();
    at::Tensor where = at::from_blob(const_cast<int64_t*>(pending->batch->data()),
                                     {static_cast<int64_t>(pending->batch->size())}, at::kLong);
    out.index_copy_(0, where, pending->values);
    progress.advance(static_cast<int64_t>(pending->batch->size()));
    pending.reset();
  };
  for (const auto& batch : batches) {
    if (options.profiler) options.profiler->begin_step();
    models::ModelInputs in = [&] {
      RECORD_USER_SCOPE("xlt::collate");
      return collate(encodings, batch, copt);
    }();
    if (padded_tokens) *padded_tokens += in.input_ids.numel();
    models::ForwardOptions fo;
    fo.packed = options.packed;
    fo.attention = options.attention;
    HostLogits next = [&] {
      RECORD_USER_SCOPE("xlt::forward");
      return HostLogits(model.forward(in, fo).logits, batch);
    }();
    if (pending) collect();
    pending.emplace(std::move(next));
    if (options.profiler) options.profiler->end_step();
  }
  if (pending) collect();
  progress.finish();
  return out;
}

void check_pairs_fit_model(const models::Model& model, const data::NliDataset& dataset,
                           const std::vector<text::Encoding>& encodings, int64_t max_length) {
  const int64_t limit = models::max_sequence_length(model);
  if (limit <= 0) return;
  for (size_t i = 0; i < encodings.size(); ++i) {
    const auto len = static_cast<int64_t>(encodings[i].size());
    if (len <= limit) continue;
    const auto& ex = dataset.examples[i];
    throw DataError(dataset.source + (ex.line > 0 ? ":" + std::to_string(ex.line) : "") + " (" +
                    dataset.lang + "): a pair has " + std::to_string(len) +
                    " tokens at --max-length " + std::to_string(max_length) +
                    " but the model's positions cover " + std::to_string(limit) +
                    " (max_position_embeddings in its config.json): use --max-length " +
                    std::to_string(limit) + " or less");
  }
}

EvalPredictions evaluate_nli(models::Model& model, const text::Tokenizer& tokenizer,
                             const data::NliDataset& dataset, const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int num_labels = dataset.labels.size();
  std::vector<int> label_map = options.label_map;
  if (label_map.empty()) {
    label_map.resize(static_cast<size_t>(num_labels));
    std::iota(label_map.begin(), label_map.end(), 0);
  }
  if (static_cast<int64_t>(label_map.size()) != model.num_labels() ||
      model.num_labels() != num_labels) {
    throw ConfigError("the model has " + std::to_string(model.num_labels()) +
                      " labels but the data has " + std::to_string(num_labels) +
                      " (label map of size " + std::to_string(label_map.size()) + ")");
  }
  std::vector<char> seen(static_cast<size_t>(num_labels), 0);
  for (int id : label_map) {
    if (id < 0 || id >= num_labels || seen[id])
      throw ConfigError("label map is not a permutation of 0.." + std::to_string(num_labels - 1));
    seen[id] = 1;
  }

  auto encodings =
      encode_nli_pairs(tokenizer, dataset, options.max_length, options.tokenizer_threads);
  check_pairs_fit_model(model, dataset, encodings, options.max_length);
  EvalPredictions r;
  r.lang = dataset.lang;
  r.label_names = dataset.labels.names;
  for (const auto& e : encodings) {
    r.tokens += static_cast<int64_t>(e.size());
    r.truncated += e.num_truncated > 0;
  }
  EvalOptions opt = options;
  if (opt.progress_label.empty()) opt.progress_label = "eval " + dataset.lang;
  at::Tensor logits =
      predict_logits(model, encodings, collate_options_for(tokenizer), opt, &r.padded_tokens);
  if (opt.combine_logits) opt.combine_logits(logits, r.padded_tokens);
  at::Tensor probs = at::softmax(logits, 1).contiguous();
  const float* p = probs.data_ptr<float>();

  const auto n = dataset.size();
  r.index.resize(n);
  r.gold.resize(n);
  r.pred.resize(n);
  r.probs.assign(n, std::vector<float>(static_cast<size_t>(num_labels)));
  for (int64_t i = 0; i < n; ++i) {
    const auto& ex = dataset.examples[i];
    r.index[i] = ex.index;
    r.gold[i] = ex.label;
    auto& row = r.probs[i];
    for (int k = 0; k < num_labels; ++k) row[label_map[k]] = p[i * num_labels + k];
    r.pred[i] = static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace xlt::eval
