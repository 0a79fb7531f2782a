// batched_matmul against at::matmul: values and gradients for the operand layouts attention
// produces (head-permuted views of a fused QKV, transposed keys, strides that fit no BLAS layout,
// empty and size-1 dimensions), where its own sgemm loop applies (libtorch 1.13, float32 CPU)
// and where it hands over to at::matmul.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/version.h>

#include "models/layers.h"

namespace xlt::test {
namespace {

using models::batched_matmul;
using models::batched_matmul_loops;

// float32 products of O(1) values over k <= 64 terms: summation order (BLAS blocking vs bmm's
// path) moves results by a few ulps.
void expect_close(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-5))
      << "max |diff| " << (got - want).abs().max().item<double>();
}

TEST(BatchedMatmul, LoopAppliesToFloatCpuBatchesOnLibtorch1) {
  const bool own = TORCH_VERSION_MAJOR < 2;
  auto a = at::randn({4, 5, 6}), b = at::randn({4, 6, 3});
  EXPECT_EQ(batched_matmul_loops(a, b), own);
  EXPECT_EQ(batched_matmul_loops(a.unsqueeze(0), b.unsqueeze(0)), own);
  EXPECT_FALSE(batched_matmul_loops(a.to(at::kDouble), b.to(at::kDouble)));
  EXPECT_FALSE(batched_matmul_loops(a[0], b[0]));                            // one matrix
  EXPECT_FALSE(batched_matmul_loops(a, b.narrow(0, 0, 1)));                  // broadcasting
  EXPECT_FALSE(batched_matmul_loops(a.narrow(0, 0, 1), b.narrow(0, 0, 1)));  // one matrix
  // Switched off (benchmarks' baseline), it is at::matmul; switched back on, the loop again.
  EXPECT_TRUE(models::set_batched_matmul_loop(false));
  EXPECT_FALSE(batched_matmul_loops(a, b));
  EXPECT_FALSE(models::set_batched_matmul_loop(true));
  EXPECT_EQ(batched_matmul_loops(a, b), own);
}

TEST(BatchedMatmul, MatchesMatmulOnAttentionLayouts) {
  at::manual_seed(5);
  // Fused QKV [B, T, 3 * H * D] split into heads the way the encoder does it.
  const int64_t B = 3, T = 7, H = 2, D = 4;
  auto qkv = at::randn({B, T, 3 * H * D});
  auto parts = qkv.split(H * D, -1);
  auto heads = [&](const at::Tensor& x) { return x.view({B, T, H, D}).permute({0, 2, 1, 3}); };
  auto q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);
  expect_close(batched_matmul(q, k.transpose(-1, -2)), at::matmul(q, k.transpose(-1, -2)));
  auto p = at::softmax(at::matmul(q, k.transpose(-1, -2)), -1);
  expect_close(batched_matmul(p, v), at::matmul(p, v));
  // Both operands transposed; a last dimension with stride 2 (copied); size-1 and empty dims.
  auto a = at::randn({5, 6, 3}), b = at::randn({5, 4, 6});
  expect_close(batched_matmul(a.transpose(1, 2), b.transpose(1, 2)),
               at::matmul(a.transpose(1, 2), b.transpose(1, 2)));
  auto wide = at::randn({5, 3, 12});
  auto strided = wide.slice(2, 0, 12, 2);
  expect_close(batched_matmul(strided, a), at::matmul(strided, a));
  auto r = at::randn({4, 1, 6}), c = at::randn({4, 6, 1});
  expect_close(batched_matmul(r, c), at::matmul(r, c));
  expect_close(batched_matmul(c, r), at::matmul(c, r));
  auto none = batched_matmul(at::randn({4, 3, 0}), at::randn({4, 0, 2}));
  EXPECT_EQ(none.sizes(), (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(none.abs().sum().item<float>(), 0.0f);
  {
    c10::InferenceMode guard;
    expect_close(batched_matmul(q, k.transpose(-1, -2)), at::matmul(q, k.transpose(-1, -2)));
  }
}

TEST(BatchedMatmul, GradientsMatchMatmulThroughViews) {
  at::manual_seed(6);
  const int64_t B = 2, T = 5, H = 3, D = 4;
  auto base = at::randn({B, T, 3 * H * D});
  auto w1 = at::randn({B, H, T, T}), w2 = at::randn({B, H, T, D});
  auto run = [&](bool own) {
    auto qkv = base.clone().requires_grad_(true);
    auto parts = qkv.split(H * D, -1);
    auto heads = [&](const at::Tensor& x) { return x.view({B, T, H, D}).permute({0, 2, 1, 3}); };
    auto mm = [&](const at::Tensor& x, const at::Tensor& y) {
      return own ? batched_matmul(x, y) : at::matmul(x, y);
    };
    auto s = mm(heads(parts[0]), heads(parts[1]).transpose(-1, -2));
    auto ctx = mm(at::softmax(s, -1), heads(parts[2]));
    ((s * w1).sum() + (ctx * w2).sum()).backward();
    return qkv.grad();
  };
  expect_close(run(true), run(false));
}

TEST(BatchedMatmul, SameBitsWithOneOrTwoThreads) {
  auto a = at::randn({24, 9, 16}), b = at::randn({24, 16, 9});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto one = batched_matmul(a, b);
  at::set_num_threads(2);
  auto two = batched_matmul(a, b);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(one, two));
}

}  // namespace
}  // namespace xlt::test
