// Encodings -> padded int64 tensors (dynamic padding per batch), and NLI pair encoding with
// Hugging Face's longest_first truncation. Shared by evaluation and training.
#include "xlt/eval/collate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace xlt::eval {

CollateOptions collate_options_for(const text::Tokenizer& tokenizer) {
  CollateOptions o;
  const auto& pad = tokenizer.special_tokens().pad;
  o.pad_id = pad.present() ? pad.id : 0;
  o.side = tokenizer.info().padding_side;
  o.token_type_ids = tokenizer.info().uses_token_type_ids;
  return o;
}

models::ModelInputs collate(const std::vector<text::Encoding>& encodings,
                            const std::vector<int64_t>& positions, const CollateOptions& options) {
  if (positions.empty()) throw std::invalid_argument("collate: empty batch");
  int64_t longest = 0;
  for (int64_t p : positions) {
    if (p < 0 || p >= static_cast<int64_t>(encodings.size()))
      throw std::invalid_argument("collate: position " + std::to_string(p) + " out of range (" +
                                  std::to_string(encodings.size()) + " encodings)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(encodings[p].size()));
  }
  if (options.pad_to_multiple_of > 0) {
    const int64_t m = options.pad_to_multiple_of;
    longest = (longest + m - 1) / m * m;
  }
  const auto rows = static_cast<int64_t>(positions.size());
  // Filled on CPU through raw pointers (cheap for these sizes), then moved once.
  at::Tensor ids = at::full({rows, longest}, options.pad_id, at::kLong);
  at::Tensor mask = at::zeros({rows, longest}, at::kLong);
  at::Tensor types;
  if (options.token_type_ids) types = at::zeros({rows, longest}, at::kLong);
  int64_t* ip = ids.data_ptr<int64_t>();
  int64_t* mp = mask.data_ptr<int64_t>();
  int64_t* tp = options.token_type_ids ? types.data_ptr<int64_t>() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const text::Encoding& e = encodings[positions[r]];
    const auto len = static_cast<int64_t>(e.size());
    const int64_t off = options.side == text::PaddingSide::kLeft ? longest - len : 0;
    for (int64_t t = 0; t < len; ++t) {
      const int64_t k = r * longest + off + t;
      ip[k] = e.ids[t];
      mp[k] = e.attention_mask.empty() ? 1 : e.attention_mask[t];
      if (tp && !e.token_type_ids.empty()) tp[k] = e.token_type_ids[t];
    }
  }
  models::ModelInputs in;
  in.input_ids = ids.to(options.device);
  in.attention_mask = mask.to(options.device);
  if (options.token_type_ids) in.token_type_ids = types.to(options.device);
  return in;
}

models::ModelInputs collate(const std::vector<text::Encoding>& batch,
                            const CollateOptions& options) {
  std::vector<int64_t> all(batch.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return collate(batch, all, options);
}

at::Tensor collate_labels(const std::vector<int>& labels, const std::vector<int64_t>& positions,
                          c10::Device device) {
  at::Tensor t = at::empty({static_cast<int64_t>(positions.size())}, at::kLong);
  int64_t* p = t.data_ptr<int64_t>();
  for (size_t i = 0; i < positions.size(); ++i) {
    const int64_t pos = positions[i];
    if (pos < 0 || pos >= static_cast<int64_t>(labels.size()))
      throw std::invalid_argument("collate_labels: position " + std::to_string(pos) +
                                  " out of range");
    p[i] = labels[pos];
  }
  return t.to(device);
}

std::vector<text::Encoding> encode_nli_pairs(const text::Tokenizer& tokenizer,
                                             const data::NliDataset& dataset, int64_t max_length,
                                             int threads) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(dataset.examples.size());
  for (const auto& ex : dataset.examples) pairs.emplace_back(ex.premise, ex.hypothesis);
  text::EncodeOptions opt;
  opt.truncation = text::TruncationStrategy::kLongestFirst;
  opt.max_length = static_cast<size_t>(std::max<int64_t>(0, max_length));
  // 0: as many tokeniser threads as libtorch's pool, which --threads set (the tokenizer's own
  // 0 means every core, which a `--threads 1` run on a shared machine must not take).
  return tokenizer.encode_pair_batch(pairs, opt, threads > 0 ? threads : at::get_num_threads());
}

std::vector<int64_t> encoding_lengths(const std::vector<text::Encoding>& encodings) {
  std::vector<int64_t> lengths(encodings.size());
  for (size_t i = 0; i < encodings.size(); ++i) {
    const auto& e = encodings[i];
    int64_t n = 0;
    if (e.attention_mask.empty()) {
      n = static_cast<int64_t>(e.size());
    } else {
      for (auto m : e.attention_mask) n += m != 0;
    }
    lengths[i] = n;
  }
  return lengths;
}

}  // namespace xlt::eval
