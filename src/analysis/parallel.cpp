// Fixed-block fork-join helper (see parallel.h).
#include "analysis/parallel.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace xlt::analysis::detail {

void parallel_blocks(int64_t n, int64_t block, int threads,
                     const std::function<void(int64_t, int64_t, int64_t)>& fn) {
  const int64_t blocks = block_count(n, block);
  if (blocks == 0) return;
  const int64_t workers = std::min<int64_t>(std::max(threads, 1), blocks);
  auto run = [&](int64_t t) {
    for (int64_t b = t; b < blocks; b += workers) {
      fn(b, b * block, std::min(n, (b + 1) * block));
    }
  };
  if (workers == 1) {
    run(0);
    return;
  }
  std::exception_ptr first_error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  auto guarded = [&](int64_t t) {
    try {
      run(t);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
    }
  };
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(guarded, t);
  guarded(0);
  for (auto& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace xlt::analysis::detail
