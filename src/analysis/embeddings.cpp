// Sentence embeddings from a model's hidden states (see embeddings.h). Sentences are batched in
// length order so that a batch pads little, then the pooled rows are put back in input order.
#include "xlt/analysis/embeddings.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "xlt/core/error.h"
#include "xlt/core/progress.h"

namespace xlt::analysis {

std::vector<int> parse_layers(const std::string& spec, int num_layers, int first) {
  std::vector<int> out;
  if (spec.empty() || spec == "all") {
    for (int l = first; l <= num_layers; ++l) out.push_back(l);
    return out;
  }
  if (spec == "last") return {num_layers};
  std::istringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int l = 0;
    try {
      l = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) {
      throw UsageError("layers: expected all, last or a comma-separated list of numbers, got '" +
                       spec + "'");
    }
    if (l < 0) l += num_layers + 1;
    if (l < first || l > num_layers) {
      throw UsageError("layer " + item + " is out of range: this model has layers " +
                       std::to_string(first) + ".." + std::to_string(num_layers));
    }
    // "4,4" or "12,-1" name one layer twice: computed once (it gave duplicate alignment rows
    // and counted twice in attention's mean differences).
    if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  }
  return out;
}

SentenceEmbeddings sentence_embeddings(models::Model& model,
                                       const std::vector<text::Encoding>& encodings,
                                       const eval::CollateOptions& collate,
                                       const EmbeddingOptions& options) {
  const int L = static_cast<int>(model.config().num_hidden_layers);
  SentenceEmbeddings r;
  r.num_layers = L;
  r.layers = options.layers;
  if (r.layers.empty()) r.layers = parse_layers("all", L, 0);
  for (int l : r.layers) {
    if (l < 0 || l > L) {
      throw UsageError("layer " + std::to_string(l) +
                       " is out of range: hidden_states has layers "
                       "0.." +
                       std::to_string(L));
    }
  }
  const int64_t n = static_cast<int64_t>(encodings.size());
  const int64_t H = model.config().hidden_size;
  for (size_t k = 0; k < r.layers.size(); ++k) r.matrices.emplace_back(n, H);
  for (const auto& e : encodings) r.num_tokens.push_back(static_cast<int64_t>(e.size()));
  if (n == 0) return r;
  if (options.batch_size < 1) throw UsageError("batch size must be >= 1");

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return encodings[static_cast<size_t>(a)].size() < encodings[static_cast<size_t>(b)].size();
  });
  // On the host: the forward checks the inputs and plans packing there, then moves them.
  const eval::CollateOptions& copts = collate;
  Progress progress(options.progress_label, n, "sentences", options.progress);
  c10::InferenceMode guard;
  for (int64_t start = 0; start < n; start += options.batch_size) {
    const std::vector<int64_t> pos(order.begin() + start,
                                   order.begin() + std::min(n, start + options.batch_size));
    const models::ModelInputs in = eval::collate(encodings, pos, copts);
    const int64_t B = static_cast<int64_t>(pos.size());
    const int64_t T = in.input_ids.size(1);
    std::vector<float> w(static_cast<size_t>(B * T), 0.0f);
    for (int64_t b = 0; b < B; ++b) {
      const auto& e = encodings[static_cast<size_t>(pos[static_cast<size_t>(b)])];
      const auto pw = pooling_weights(e, options.pooling, options.special);
      const int64_t offset =
          copts.side == text::PaddingSide::kLeft ? T - static_cast<int64_t>(e.size()) : 0;
      std::copy(pw.begin(), pw.end(), w.begin() + b * T + offset);
    }
    const at::Tensor weights = at::from_blob(w.data(), {B, T, 1}, at::kFloat).to(model.device());
    models::ForwardOptions fo;
    fo.output_hidden_states = true;
    fo.compute_logits = false;
    fo.packed = true;  // pooling weights are zero at padding
    const auto out = model.forward(in, fo);
    for (size_t k = 0; k < r.layers.size(); ++k) {
      const at::Tensor& h = out.hidden_states.at(static_cast<size_t>(r.layers[k]));
      const at::Tensor pooled = (h.to(at::kFloat) * weights).sum(1).to(at::kCPU).contiguous();
      const float* src = pooled.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b) {
        std::copy(src + b * H, src + (b + 1) * H, r.matrices[k].row(pos[static_cast<size_t>(b)]));
      }
    }
    progress.advance(B);
  }
  progress.finish();
  return r;
}

int64_t effective_max_length(const models::Model& model, int64_t requested) {
  const int64_t limit = models::max_sequence_length(model);
  return std::max<int64_t>(1, limit > 0 ? std::min(requested, limit) : requested);
}

SentenceEmbeddings sentence_embeddings(models::Model& model, const text::Tokenizer& tokenizer,
                                       const std::vector<std::string>& sentences,
                                       const EmbeddingOptions& options) {
  text::EncodeOptions eo;
  eo.truncation = text::TruncationStrategy::kLongestFirst;
  eo.max_length = static_cast<size_t>(effective_max_length(model, options.max_length));
  // As many tokeniser threads as libtorch's pool (--threads), not the tokenizer's all cores.
  const auto encodings = tokenizer.encode_batch(sentences, eo, at::get_num_threads());
  return sentence_embeddings(model, encodings, eval::collate_options_for(tokenizer), options);
}

}  // namespace xlt::analysis
