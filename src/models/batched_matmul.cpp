// batched_matmul (see layers.h): attention's many small products as one parallel loop of BLAS
// calls. libtorch 1.13's CPU bmm walks the batch serially, three select() views and a full
// addmm dispatch per matrix; for the attention shapes of a BERT step (12 heads x 32 rows of
// ~45 x 64 matrices) that came to 3-4x the time of the same products issued here.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "libtorch parallelises with OpenMP: compile with -fopenmp or at::parallel_for runs serially"
#endif
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <atomic>
#include <limits>
#include <vector>

#include "models/layers.h"

namespace xlt::models {
namespace {

// CBLAS's interface, found at run time: the BLAS libtorch was linked against (OpenBLAS on
// Debian) exports it; where none does, at::matmul runs instead.
using SgemmFn = void (*)(int order, int transa, int transb, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

std::atomic<bool> g_loop_enabled{true};

SgemmFn sgemm() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "cblas_sgemm"));
  return fn;
}

// The matrices of x [..., rows, cols] as BLAS sees them: row-major with leading dimension `ld`,
// or (trans) the transpose of a row-major matrix, which is how k.transpose(-1, -2) arrives.
struct Operand {
  at::Tensor keep;  // x, or a contiguous copy when its strides fit neither layout
  bool trans = false;
  int64_t ld = 0;
  std::vector<int64_t> offsets;  // of each matrix, in elements, batch in row-major order
};

Operand operand(const at::Tensor& x, int64_t count) {
  Operand o;
  const int64_t d = x.dim(), rows = x.size(d - 2), cols = x.size(d - 1);
  // A size-1 dimension's stride is arbitrary (never stepped over): BLAS gets the smallest valid
  // leading dimension instead. Leading dimensions must fit BLAS's int.
  auto fits = [](int64_t ld) { return ld <= std::numeric_limits<int>::max(); };
  const int64_t row_ld = rows == 1 ? std::max<int64_t>(1, cols) : x.stride(d - 2);
  const int64_t col_ld = cols == 1 ? std::max<int64_t>(1, rows) : x.stride(d - 1);
  o.keep = x;
  if (x.stride(d - 1) == 1 && row_ld >= std::max<int64_t>(1, cols) && fits(row_ld)) {
    o.ld = row_ld;
  } else if (x.stride(d - 2) == 1 && col_ld >= std::max<int64_t>(1, rows) && fits(col_ld)) {
    o.trans = true;
    o.ld = col_ld;
  } else {
    o.keep = x.contiguous();
    o.ld = cols;
  }
  o.offsets.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    int64_t rest = i, off = 0;
    for (int64_t dim = d - 3; dim >= 0; --dim) {
      off += (rest % x.size(dim)) * o.keep.stride(dim);
      rest /= x.size(dim);
    }
    o.offsets[static_cast<size_t>(i)] = off;
  }
  return o;
}

int64_t batch_count(const at::Tensor& x) {
  int64_t count = 1;
  for (int64_t i = 0; i + 2 < x.dim(); ++i) count *= x.size(i);
  return count;
}

// out[i] = op(a[i]) @ op(b[i]) for equal batch shapes.
at::Tensor gemm_loop(const at::Tensor& a, const at::Tensor& b) {
  const int64_t d = a.dim(), m = a.size(d - 2), k = a.size(d - 1), n = b.size(d - 1);
  auto shape = a.sizes().vec();
  shape[static_cast<size_t>(d - 1)] = n;
  auto out = at::empty(shape, a.options());
  const int64_t count = batch_count(a);
  if (out.numel() == 0) return out;
  if (k == 0) return out.zero_();
  const auto A = operand(a, count), B = operand(b, count);
  const float* pa = A.keep.data_ptr<float>();
  const float* pb = B.keep.data_ptr<float>();
  float* pc = out.data_ptr<float>();
  const SgemmFn fn = sgemm();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto s = static_cast<size_t>(i);
      fn(kRowMajor, A.trans ? kTrans : kNoTrans, B.trans ? kTrans : kNoTrans, static_cast<int>(m),
         static_cast<int>(n), static_cast<int>(k), 1.0f, pa + A.offsets[s], static_cast<int>(A.ld),
         pb + B.offsets[s], static_cast<int>(B.ld), 0.0f, pc + i * m * n, static_cast<int>(n));
    }
  });
  return out;
}

struct BatchedMatmul : torch::autograd::Function<BatchedMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                            const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return gemm_loop(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& g = grads[0];
    at::Tensor ga, gb;
    if (!g.defined()) return {ga, gb};
    // Under create_graph the gradients must be differentiable themselves: at::matmul's are.
    const bool graph = at::GradMode::is_enabled();
    auto mm = [&](const at::Tensor& x, const at::Tensor& y) {
      return graph ? at::matmul(x, y) : gemm_loop(x, y);
    };
    if (ctx->needs_input_grad(0)) ga = mm(g, b.transpose(-1, -2));
    if (ctx->needs_input_grad(1)) gb = mm(a.transpose(-1, -2), g);
    return {ga, gb};
  }
};

bool loop_applies(const at::Tensor& a, const at::Tensor& b) {
  // 1.13 only: 2.x does not dispatch per matrix as 1.13 does, and its wheels export no CBLAS.
  if (TORCH_VERSION_MAJOR >= 2 || !sgemm() || !g_loop_enabled.load(std::memory_order_relaxed)) {
    return false;
  }
  if (!a.device().is_cpu() || !b.device().is_cpu() || a.layout() != at::kStrided ||
      b.layout() != at::kStrided || a.scalar_type() != at::kFloat ||
      b.scalar_type() != at::kFloat || a.dim() < 3 || a.dim() != b.dim()) {
    return false;
  }
  const int64_t d = a.dim();
  for (int64_t i = 0; i < d - 2; ++i) {
    if (a.size(i) != b.size(i)) return false;  // no broadcasting here
  }
  const int64_t m = a.size(d - 2), k = a.size(d - 1), n = b.size(d - 1);
  if (b.size(d - 2) != k) return false;  // let at::matmul report the mismatch
  // Large products are better served by one multi-threaded GEMM each; int holds the sizes. (The
  // loop expects an OpenMP OpenBLAS, which runs single-threaded inside a parallel region, as
  // ./setup selects; a pthreads build would add its own threads above ~2^18 multiply-adds.)
  const int64_t count = batch_count(a);
  constexpr int64_t kMax = int64_t{1} << 24;
  return count >= 2 && m * n * k <= kMax && m < kMax && n < kMax && k < kMax;
}

}  // namespace

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (!loop_applies(a, b)) return at::matmul(a, b);
  return BatchedMatmul::apply(a, b);
}

bool batched_matmul_loops(const at::Tensor& a, const at::Tensor& b) {
  return loop_applies(a, b);
}

bool set_batched_matmul_loop(bool enabled) {
  return g_loop_enabled.exchange(enabled);
}

}  // namespace xlt::models
