// Sharded NLI evaluation: with a distributed group (xlt/dist/dist.h) each rank classifies one
// contiguous slice of the dataset and the predictions are gathered in rank order, so every rank
// ends up with the same EvalPredictions a single process computes (same order, same statistics).
#pragma once

#include <string>

#include "xlt/dist/dist.h"
#include "xlt/eval/evaluate.h"

namespace xlt::eval {

// evaluate_nli on this rank's slice [rank*n/W, (rank+1)*n/W), then all-gathered. `group` nullptr
// (or of size 1) = plain evaluate_nli. Progress is shown on rank 0 only. `seconds` is the
// slowest rank's, tokens/padded_tokens/truncated are sums.
EvalPredictions evaluate_nli_sharded(models::Model& model, const text::Tokenizer& tokenizer,
                                     const data::NliDataset& dataset, const EvalOptions& options,
                                     dist::Group* group);

// Exact binary round trip of EvalPredictions (CBOR; floats kept bit for bit).
std::string serialize_predictions(const EvalPredictions& p);
EvalPredictions deserialize_predictions(const std::string& bytes);

}  // namespace xlt::eval
