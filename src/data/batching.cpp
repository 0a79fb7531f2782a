// Length-sorted inference batches and length-grouped training batches; see
// include/xlt/data/batching.h.
#include "xlt/data/batching.h"

#include <algorithm>
#include <numeric>

#include "xlt/data/random.h"

namespace xlt::data {

namespace {
void check_batch_size(int64_t batch_size) {
  if (batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
}

// Stable sort of positions by length, longest first.
void sort_longest_first(std::vector<int64_t>::iterator first, std::vector<int64_t>::iterator last,
                        const std::vector<int64_t>& lengths) {
  std::stable_sort(first, last, [&](int64_t a, int64_t b) {
    return lengths[static_cast<size_t>(a)] > lengths[static_cast<size_t>(b)];
  });
}
// Cuts positions [first, last), sorted longest first, into batches of at most batch_size rows
// (<= 0: no row cap) and, when max_tokens > 0, at most max_tokens padded tokens.
void cut_sorted(std::vector<int64_t>::const_iterator first,
                std::vector<int64_t>::const_iterator last, const std::vector<int64_t>& lengths,
                int64_t batch_size, int64_t max_tokens, std::vector<Batch>& out) {
  for (auto it = first; it != last;) {
    Batch b;
    // Sorted longest first, so the first row's length is the padded length of the batch.
    const int64_t longest = std::max<int64_t>(lengths[static_cast<size_t>(*it)], 1);
    while (it != last && (batch_size <= 0 || static_cast<int64_t>(b.size()) < batch_size) &&
           (b.empty() || max_tokens <= 0 ||
            (static_cast<int64_t>(b.size()) + 1) * longest <= max_tokens)) {
      b.push_back(*it++);
    }
    out.push_back(std::move(b));
  }
}

// Moves the batch holding the longest example to the front (each batch is sorted longest first).
void longest_batch_first(std::vector<Batch>& batches, const std::vector<int64_t>& lengths) {
  if (batches.empty()) return;
  size_t best = 0;
  for (size_t i = 1; i < batches.size(); ++i)
    if (lengths[static_cast<size_t>(batches[i][0])] >
        lengths[static_cast<size_t>(batches[best][0])])
      best = i;
  std::swap(batches[0], batches[best]);
}

// 0 .. n-1 in a Fisher-Yates order drawn from rng (the first draws of a batch plan).
std::vector<int64_t> shuffled_positions(size_t n, Xoshiro256ss& rng) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, rng);
  return order;
}

}  // namespace

std::vector<Batch> length_sorted_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                         int64_t max_tokens) {
  check_batch_size(batch_size);
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  sort_longest_first(order.begin(), order.end(), lengths);
  std::vector<Batch> batches;
  cut_sorted(order.begin(), order.end(), lengths, batch_size, max_tokens, batches);
  return batches;
}

std::vector<Batch> input_order_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                       int64_t max_tokens) {
  check_batch_size(batch_size);
  std::vector<Batch> batches;
  const auto n = static_cast<int64_t>(lengths.size());
  for (int64_t i = 0; i < n;) {
    Batch b;
    int64_t longest = 0;
    while (i < n && static_cast<int64_t>(b.size()) < batch_size) {
      const int64_t padded =
          std::max(longest, std::max<int64_t>(lengths[static_cast<size_t>(i)], 1));
      if (!b.empty() && max_tokens > 0 &&
          (static_cast<int64_t>(b.size()) + 1) * padded > max_tokens) {
        break;
      }
      longest = padded;
      b.push_back(i++);
    }
    batches.push_back(std::move(b));
  }
  return batches;
}

std::vector<Batch> token_budget_batches(const std::vector<int64_t>& lengths, int64_t max_tokens,
                                        uint64_t seed, int64_t max_rows, bool longest_first) {
  if (max_tokens < 1) throw std::invalid_argument("token budget must be at least 1");
  const int64_t n = static_cast<int64_t>(lengths.size());
  if (n == 0) return {};
  Xoshiro256ss rng(seed);
  auto order = shuffled_positions(lengths.size(), rng);
  // HF's megabatch rule with the rows a budget holds on average in place of the batch size.
  const double mean = std::max(
      1.0, static_cast<double>(std::accumulate(lengths.begin(), lengths.end(), int64_t{0})) /
               static_cast<double>(n));
  int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(max_tokens) / mean));
  if (max_rows > 0) rows = std::min(rows, max_rows);
  const int64_t mega = std::clamp<int64_t>(n / (4 * rows), 1, 50) * rows;
  std::vector<Batch> batches;
  for (int64_t start = 0; start < n; start += mega) {
    const int64_t end = std::min(n, start + mega);
    sort_longest_first(order.begin() + start, order.begin() + end, lengths);
    cut_sorted(order.begin() + start, order.begin() + end, lengths, max_rows, max_tokens, batches);
  }
  shuffle(batches, rng);
  if (longest_first) longest_batch_first(batches, lengths);
  return batches;
}

std::vector<Batch> length_grouped_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                          uint64_t seed, bool longest_first) {
  check_batch_size(batch_size);
  const int64_t n = static_cast<int64_t>(lengths.size());
  if (n == 0) return {};
  Xoshiro256ss rng(seed);
  auto order = shuffled_positions(lengths.size(), rng);

  const int64_t mult = std::clamp<int64_t>(n / (4 * batch_size), 1, 50);
  const int64_t mega = mult * batch_size;
  std::vector<Batch> batches;
  for (int64_t start = 0; start < n; start += mega) {
    const int64_t end = std::min(n, start + mega);
    sort_longest_first(order.begin() + start, order.begin() + end, lengths);
    for (int64_t b = start; b < end; b += batch_size)
      batches.emplace_back(order.begin() + b, order.begin() + std::min(end, b + batch_size));
  }
  shuffle(batches, rng);
  if (longest_first) longest_batch_first(batches, lengths);
  return batches;
}

std::vector<int64_t> flatten(const std::vector<Batch>& batches) {
  std::vector<int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace xlt::data
