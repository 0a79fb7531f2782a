// Private to xlt::train: reading and checking the --train/--dev data, tokenising the training set
// into compact encodings, and the seeded per-epoch batch order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xlt/data/batching.h"
#include "xlt/data/nli.h"
#include "xlt/text/tokenizer.h"

namespace xlt::train::detail {

// Random streams derived from the run's seed (data::derive_seed(seed, stream)), so that the batch
// order, dropout and the subset never share numbers.
inline constexpr uint64_t kOrderStream = 0x6f72646572ULL;  // "order"
inline constexpr uint64_t kDropoutStream = 0x64726f70ULL;  // "drop"

// Reads every spec (as xlt eval's --data) and concatenates them into one dataset (languages in
// command-line order). `flag` names the option in messages. With `keep_langs`, a file or dataset
// of several languages contributes only those (the others are named on stderr; none left is a
// DataError); a language a value names itself (LANG=PATH, lang=) is kept.
data::NliDataset read_dataset(const std::vector<std::string>& specs,
                              const std::vector<std::string>& langs, const std::string& flag,
                              data::NliFormat format, bool skip_bad_rows,
                              const std::vector<std::string>* keep_langs = nullptr);

// SHA-256 over the examples' text and labels, in order: what --resume compares, so that a data
// file edited between the stop and the resume is noticed (the fingerprint names only paths).
std::string dataset_digest(const data::NliDataset& dataset);

// DataError unless every example has a label in [0, num_labels); names the file and line.
void check_labels(const data::NliDataset& dataset, const std::string& flag, int num_labels);

// Encoded training examples without the fields training never reads (tokens, offsets), so that
// the full MultiNLI training set fits in a few hundred MB.
struct EncodedSet {
  std::vector<text::Encoding> encodings;
  std::vector<int> labels;  // model output index per example
  std::vector<int64_t> lengths;
  int64_t tokens = 0;     // real tokens in the whole set
  int64_t truncated = 0;  // examples shortened by max_length
};

// `data_to_model[d]` = model output index of dataset label d.
EncodedSet encode_training_set(const text::Tokenizer& tokenizer, const data::NliDataset& dataset,
                               int64_t max_length, const std::vector<int>& data_to_model,
                               bool progress);

// The micro-batches of one epoch: length-grouped (data::length_grouped_batches) or a plain
// shuffle cut into batches, both from derive_seed(derive_seed(seed, kOrderStream), epoch); with
// max_tokens > 0, token-budget batches (data::token_budget_batches, always length-grouped)
// instead of batch_size rows.
std::vector<data::Batch> epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                       uint64_t seed, int64_t epoch, bool group_by_length,
                                       int64_t max_tokens = 0);

}  // namespace xlt::train::detail
