// batched_matmul against at::matmul: values and gradients for the operand layouts attention
// produces (head-permuted views of a fused QKV, transposed keys, strides that fit no BLAS layout,
// empty and size-1 dimensions), where its own sgemm loop applies (libtorch 1.13, float32 CPU)
// and where it hands over to at::matmul.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include "models/layers.h"

namespace xlt::test {
namespace {

using models::batched_matmul;
using models::batched_matmul_loops;

// float32 sums over k <= 64 terms: summation order (BLAS blocking vs bmm's path) moves results
// by a few ulps of the largest terms, hence a tolerance relative to the largest value.
void expect_close(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  const double scale = std::max(1.0, want.numel() ? want.abs().max().item<double>() : 0.0);
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-5 * scale))
      << "max |diff| " << (got - want).abs().max().item<double>() << ", max |want| "
      << want.abs().max().item<double>();
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
  // Empty inner dimension (the loop's own zero fill) and empty output.
  EXPECT_EQ(batched_matmul_loops(at::randn({4, 3, 0}), at::randn({4, 0, 2})),
            TORCH_VERSION_MAJOR < 2);
  auto none = batched_matmul(at::randn({4, 3, 0}), at::randn({4, 0, 2}));
  EXPECT_EQ(none.sizes(), (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(none.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(batched_matmul(at::randn({4, 3, 5}), at::randn({4, 5, 0})).sizes(),
            (std::vector<int64_t>{4, 3, 0}));
  // A batch dimension expanded from one matrix (stride 0), and size-1 dimensions whose strides
  // are arbitrary (as narrow/unsqueeze leave them).
  auto one = at::randn({1, 6, 3}), many = at::randn({5, 3, 4});
  expect_close(batched_matmul(one.expand({5, 6, 3}), many),
               at::matmul(one.expand({5, 6, 3}), many));
  auto wide_row = at::randn({5, 7, 6}).narrow(1, 2, 1);  // [5, 1, 6], row stride 6 != cols
  auto odd = at::randn({5, 3, 1}).as_strided({5, 3, 1}, {3, 1, 1000});
  expect_close(batched_matmul(wide_row, a), at::matmul(wide_row, a));
  expect_close(batched_matmul(a.transpose(1, 2).contiguous().transpose(1, 2), odd),
               at::matmul(a.transpose(1, 2).contiguous().transpose(1, 2), odd));
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

// As the encoder uses it: the scores scaled and masked in place before softmax, and only one
// operand needing a gradient; and a second derivative (create_graph) through its backward.
TEST(BatchedMatmul, InPlaceUseOneSidedGradientsAndDoubleBackward) {
  at::manual_seed(7);
  auto x = at::randn({3, 2, 5, 4}), y = at::randn({3, 2, 4, 5}), w = at::randn({3, 2, 5, 5});
  auto run = [&](bool own, bool both) {
    auto xx = x.clone().requires_grad_(true), yy = both ? y.clone().requires_grad_(true) : y;
    auto s = own ? batched_matmul(xx, yy) : at::matmul(xx, yy);
    s.div_(2.0);
    s.add_(w);
    (at::softmax(s, -1) * w).sum().backward();
    return std::make_pair(xx.grad(), both ? yy.grad() : at::Tensor());
  };
  for (const bool both : {true, false}) {
    const auto got = run(true, both), want = run(false, both);
    expect_close(got.first, want.first);
    if (both) expect_close(got.second, want.second);
  }
  auto second = [&](bool own) {
    auto xx = x.clone().requires_grad_(true);
    auto s = own ? batched_matmul(xx, y) : at::matmul(xx, y);
    auto g = torch::autograd::grad({(s * s).sum()}, {xx}, {}, true, true)[0];
    g.pow(2).sum().backward();
    return xx.grad();
  };
  expect_close(second(true), second(false));
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
