// Deterministic fork-join parallelism for the torch-free analysis code (t-SNE, alignment).
// Work over [0, n) is cut into fixed blocks whose boundaries depend only on n and the block size,
// never on the thread count; thread t runs blocks t, t + T, t + 2T, ... Callers keep one partial
// result per block and combine them in block order, so sums are bit-identical for any thread
// count.
#pragma once

#include <cstdint>
#include <functional>

namespace xlt::analysis::detail {

// Number of blocks of `block` items covering [0, n).
inline int64_t block_count(int64_t n, int64_t block) {
  return n <= 0 ? 0 : (n + block - 1) / block;
}

// Calls fn(block_index, begin, end) for every block. Runs inline when threads <= 1 or there is a
// single block. The first exception thrown by any block is rethrown after all threads joined.
void parallel_blocks(int64_t n, int64_t block, int threads,
                     const std::function<void(int64_t, int64_t, int64_t)>& fn);

}  // namespace xlt::analysis::detail
