// Batch planning from token lengths, without libtorch: which example positions go into which
// batch. Inference sorts by length so padding is small, and the results are put back in input
// order; training groups similar lengths like Hugging Face's `group_by_length` but stays random.
//
// Usage (inference):
//   auto batches = xlt::data::length_sorted_batches(lengths, 32);
//   for (auto& b : batches) run(b) -> outputs for positions b[0], b[1], ...
//   auto out = xlt::data::restore_order(batches, outputs_in_batch_order);
// Usage (training, one epoch):
//   auto batches = xlt::data::length_grouped_batches(lengths, 32, derive_seed(seed, epoch));
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace xlt::data {

using Batch = std::vector<int64_t>;  // positions into the example list

// Positions sorted by length, longest first (ties keep input order), cut into batches of at most
// `batch_size`. When max_tokens > 0 a batch also stops growing before batch_rows * longest_length
// (its padded size) would exceed max_tokens; a single example longer than max_tokens still gets
// a batch of its own. Every position appears exactly once. Throws std::invalid_argument when
// batch_size < 1.
std::vector<Batch> length_sorted_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                         int64_t max_tokens = 0);
// The same cut with the positions in input order (eval's --no-sort): a batch ends at batch_size
// rows or before rows x longest-so-far would exceed max_tokens (when > 0).
std::vector<Batch> input_order_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                       int64_t max_tokens = 0);

// Training order in the manner of Hugging Face's LengthGroupedSampler, fully seeded:
//   1. shuffle all positions (Fisher-Yates, Xoshiro256ss(seed));
//   2. cut into megabatches of mult * batch_size, mult = clamp(n / (4 * batch_size), 1, 50)
//      (HF's rule), and sort each megabatch by length, longest first (stable);
//   3. cut each megabatch into batches of batch_size (the last one of each may be smaller);
//   4. shuffle the batch order with the same generator;
//   5. if longest_first, swap the batch holding the longest example with the first one, so an
//      out-of-memory error shows up at the first step rather than mid-epoch.
// Same (lengths, batch_size, seed) -> same batches on every machine. Use derive_seed(seed, epoch)
// for a new order each epoch.
std::vector<Batch> length_grouped_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                          uint64_t seed, bool longest_first = true);

// Token-budget training batches (fairseq's --max-tokens, grouped and shuffled like
// length_grouped_batches): shuffle; megabatches of mult * r positions (r = rows the budget holds
// at the mean length, capped by max_rows; mult = clamp(n / (4 * r), 1, 50)), each sorted longest
// first and cut into batches of at most max_tokens padded tokens (rows * longest) and, when
// max_rows > 0, at most max_rows rows; shuffle the batches; optionally the longest batch first.
// An example longer than the budget gets a batch of its own. Deterministic in (lengths,
// max_tokens, seed, max_rows). Throws std::invalid_argument when max_tokens < 1.
std::vector<Batch> token_budget_batches(const std::vector<int64_t>& lengths, int64_t max_tokens,
                                        uint64_t seed, int64_t max_rows = 0,
                                        bool longest_first = true);

// Positions in batch order (the concatenation of the batches).
std::vector<int64_t> flatten(const std::vector<Batch>& batches);

// Puts per-example outputs produced batch by batch (in flatten(batches) order) back into input
// order: result[batches[b][i]] = outputs[offset(b) + i]. Throws std::invalid_argument when the
// sizes disagree or a position repeats or is out of range.
template <typename T>
std::vector<T> restore_order(const std::vector<Batch>& batches, const std::vector<T>& outputs) {
  std::vector<int64_t> order = flatten(batches);
  if (order.size() != outputs.size())
    throw std::invalid_argument("restore_order: batches hold a different number of positions");
  std::vector<T> result(outputs.size());
  std::vector<char> seen(outputs.size(), 0);
  for (size_t k = 0; k < order.size(); ++k) {
    auto p = order[k];
    if (p < 0 || static_cast<size_t>(p) >= result.size() || seen[static_cast<size_t>(p)])
      throw std::invalid_argument("restore_order: batches are not a permutation");
    seen[static_cast<size_t>(p)] = 1;
    result[static_cast<size_t>(p)] = outputs[k];
  }
  return result;
}

}  // namespace xlt::data
