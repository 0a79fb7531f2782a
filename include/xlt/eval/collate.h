// Turning tokenizer Encodings into model input tensors with dynamic padding (each batch padded to
// its own longest row, not to max_length), as Hugging Face's DataCollatorWithPadding does. Shared
// by evaluation (xlt eval, dev-set evaluation during fine-tuning) and training batches.
//
// Usage:
//   auto encs = xlt::eval::encode_nli_pairs(tok, dataset, /*max_length=*/128);
//   auto copts = xlt::eval::collate_options_for(tok);
//   xlt::models::ModelInputs in = xlt::eval::collate(encs, batch_positions, copts);
//   in.labels = xlt::eval::collate_labels(dataset.gold(), batch_positions);
//
// All functions are reentrant; tensors are created on CPU unless CollateOptions::device says
// otherwise.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "xlt/data/nli.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::eval {

struct CollateOptions {
  int64_t pad_id = 0;  // input_ids value at padded positions (the tokenizer's pad token)
  text::PaddingSide side = text::PaddingSide::kRight;
  // Round the padded length up to a multiple of this (0 = off); e.g. 8 for tensor cores.
  int64_t pad_to_multiple_of = 0;
  // Fill ModelInputs::token_type_ids (BERT). When false they stay undefined (= zeros).
  bool token_type_ids = true;
  c10::Device device{c10::kCPU};
};

// pad_id and padding side from the tokenizer; token_type_ids only when the model family uses them
// (BERT), since XLM-R/XGLM inputs are all zeros anyway.
CollateOptions collate_options_for(const text::Tokenizer& tokenizer);

// Stacks encodings[positions[0]], encodings[positions[1]], ... into int64 [batch, seq] tensors
// (input_ids, attention_mask, token_type_ids), seq = the longest selected encoding (rounded up by
// pad_to_multiple_of). Encodings must be unpadded or padded consistently; their own padding is
// kept as given. Throws std::invalid_argument for an empty batch or an out-of-range position.
models::ModelInputs collate(const std::vector<text::Encoding>& encodings,
                            const std::vector<int64_t>& positions, const CollateOptions& options);
// All of `batch`, in order.
models::ModelInputs collate(const std::vector<text::Encoding>& batch,
                            const CollateOptions& options);

// int64 [batch] tensor of labels[positions[i]] (classification targets).
at::Tensor collate_labels(const std::vector<int>& labels, const std::vector<int64_t>& positions,
                          c10::Device device = c10::kCPU);

// tokenizer(premise, hypothesis, truncation="longest_first", max_length=max_length) for every
// example, without padding, in dataset order, on `threads` threads (0 = at::get_num_threads()).
std::vector<text::Encoding> encode_nli_pairs(const text::Tokenizer& tokenizer,
                                             const data::NliDataset& dataset, int64_t max_length,
                                             int threads = 0);

// Unpadded token counts of encodings (for data::length_sorted_batches).
std::vector<int64_t> encoding_lengths(const std::vector<text::Encoding>& encodings);

}  // namespace xlt::eval
