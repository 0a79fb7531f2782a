// libtorch's intra-op thread count for one GEMM call site (t-SNE kNN, alignment retrieval): the
// analyses take an explicit `threads` argument, and the BLAS should honour it rather than the
// process-wide setting.
#pragma once

#include <ATen/Parallel.h>

namespace xlt::analysis::detail {

// Sets at::set_num_threads for the GEMM and restores the caller's value.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads) : saved_(at::get_num_threads()) {
    if (threads != saved_) at::set_num_threads(threads);
  }
  ~IntraOpThreads() {
    if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
  }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int saved_;
};

}  // namespace xlt::analysis::detail
