// Communication cost of data-parallel fine-tuning: the bucketed gradient all-reduce of an
// mBERT-base-shaped gradient (177.9 M floats in 199 tensors) over the current c10d backend.
// Run it as ranks: `xlt launch -n 2 build/bench/allreduce_bench [REPEATS]` (Gloo on 127.0.0.1).
// Rank 0 prints seconds per all-reduce, the algorithm bandwidth, and as the in-run baseline the
// time of one local pass over the same gradient (grad.mul_(0.5): a memory-bound kernel).
// Not a Google Benchmark program: it needs several processes.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "xlt/distributed/distributed.h"

namespace {

// mBERT-base parameter shapes: embeddings, 12 encoder layers, pooler, 3-way classifier.
std::vector<at::Tensor> mbert_base_gradient() {
  std::vector<std::vector<int64_t>> shapes = {{119547, 768}, {512, 768}, {2, 768}, {768}, {768}};
  for (int l = 0; l < 12; ++l) {
    for (int k = 0; k < 4; ++k) {  // q, k, v, attention output
      shapes.push_back({768, 768});
      shapes.push_back({768});
    }
    shapes.push_back({768});  // attention LayerNorm
    shapes.push_back({768});
    shapes.push_back({3072, 768});
    shapes.push_back({3072});
    shapes.push_back({768, 3072});
    shapes.push_back({768});
    shapes.push_back({768});  // output LayerNorm
    shapes.push_back({768});
  }
  shapes.push_back({768, 768});
  shapes.push_back({768});
  shapes.push_back({3, 768});
  shapes.push_back({3});
  std::vector<at::Tensor> out;
  for (const auto& s : shapes) out.push_back(at::randn(s));
  return out;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
  at::set_num_threads(1);
  const auto env = xlt::distributed::launch_env_from_process();
  auto* group = xlt::distributed::init(env, {std::chrono::seconds(600), "cpu"});
  if (group == nullptr) {
    std::fprintf(stderr, "run under `xlt launch -n 2` (needs WORLD_SIZE > 1)\n");
    return 1;
  }
  auto grads = mbert_base_gradient();
  int64_t n = 0;
  for (const auto& g : grads) n += g.numel();
  group->all_reduce_mean(grads);  // warm-up: connections, buffers
  double best = 1e30, local = 1e30;
  for (int i = 0; i < repeats; ++i) {
    group->barrier();
    auto t0 = std::chrono::steady_clock::now();
    group->all_reduce_mean(grads);
    best = std::min(best, seconds(t0));
    t0 = std::chrono::steady_clock::now();
    for (auto& g : grads) g.mul_(0.5);
    local = std::min(local, seconds(t0));
  }
  if (group->rank() == 0) {
    const double bytes = static_cast<double>(n) * 4;
    std::printf(
        "allreduce_bench: backend %s, %d ranks, %zu tensors, %.1f M floats (%.0f MB)\n"
        "  all_reduce_mean: %.3f s (best of %d), algorithm bandwidth %.2f GB/s\n"
        "  baseline, one local pass over the gradient (mul_): %.3f s -> all-reduce = %.1fx\n",
        group->backend().c_str(), group->size(), grads.size(), n / 1e6, bytes / 1e6, best, repeats,
        bytes / best / 1e9, local, best / local);
  }
  group->barrier();
  return 0;
}
