// Sharded NLI evaluation: with a distributed group (xlt/distributed/distributed.h) each rank
// classifies every W-th batch of the length-sorted plan a single process would use, and the logits
// are gathered, so every rank ends up with the EvalPredictions a single process computes, bit for
// bit.
#pragma once

#include <string>

#include "xlt/distributed/distributed.h"
#include "xlt/eval/evaluate.h"

namespace xlt::eval {

// evaluate_nli with batches b % W == rank on this rank (EvalOptions::shard_*), logits gathered
// through all_gather_bytes. `group` nullptr (or of size 1) = plain evaluate_nli. Progress is
// shown on rank 0 only; padded_tokens is the sum over ranks.
EvalPredictions evaluate_nli_sharded(models::Model& model, const text::Tokenizer& tokenizer,
                                     const data::NliDataset& dataset, const EvalOptions& options,
                                     distributed::Group* group);

}  // namespace xlt::eval
