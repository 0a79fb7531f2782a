// t-SNE speed and quality on Gaussian-mixture data shaped like sentence embeddings (768-D, 10
// components): wall time and final KL for N = 1,000 / 5,000 / 20,000 points with Barnes-Hut on 2
// threads (target: 20,000 points under a minute), plus exact t-SNE at N = 1,000 as the baseline
// measured in the same run (speed ratio and KL ratio of Barnes-Hut against it), and the kNN
// stage alone (all-pairs with GEMM preselection vs vantage-point tree). Reports wall time and
// process CPU time. Run: ./tsne_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <map>
#include <random>

#include "xlt/analysis/tsne.h"

namespace {

using xlt::analysis::Matrix;
using xlt::analysis::TsneMethod;

constexpr int kDim = 768;
constexpr int kComponents = 10;
constexpr int kThreads = 2;

// Component centres N(0, 1) per dimension (so centres are ~39 apart), unit within-component
// noise: clusters overlap in no dimension alone but separate in the full space, as languages or
// topics do in embedding space.
const Matrix& mixture(int n) {
  static std::map<int, Matrix> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  std::mt19937_64 rng(12345);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<size_t>(kComponents * kDim));
  for (float& c : centres) c = normal(rng);
  Matrix x(n, kDim);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % kComponents);
    for (int j = 0; j < kDim; ++j)
      x(i, j) = centres[static_cast<size_t>(c * kDim + j)] + normal(rng);
  }
  return cache.emplace(n, std::move(x)).first->second;
}

// Process CPU time (all threads): on a shared, loaded machine wall time says little, while CPU
// time / threads estimates the wall time of an otherwise idle machine.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Baseline: exact t-SNE at N = 1,000 (time, KL), filled by BM_TsneExact.
double g_exact_seconds = 0.0, g_exact_kl = 0.0;

void run(benchmark::State& state, TsneMethod method) {
  const int n = static_cast<int>(state.range(0));
  const Matrix& x = mixture(n);
  xlt::analysis::TsneOptions o;
  o.method = method;
  o.threads = kThreads;
  xlt::analysis::TsneResult r;
  double cpu = 0.0;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    r = xlt::analysis::tsne(x, o);
    cpu += cpu_seconds() - c0;
    benchmark::DoNotOptimize(r.embedding.data());
  }
  state.counters["cpu_s"] = cpu;
  state.counters["points"] = n;
  state.counters["kl"] = r.kl_divergence;
  state.counters["iters"] = r.iterations;
  state.counters["affinity_s"] = r.affinity_seconds;
  state.counters["total_s"] = r.seconds;
  if (method == TsneMethod::Exact && n == 1000) {
    g_exact_seconds = r.seconds;
    g_exact_kl = r.kl_divergence;
  } else if (g_exact_seconds > 0.0 && n == 1000) {
    state.counters["speedup_vs_exact"] = g_exact_seconds / r.seconds;
    state.counters["kl_vs_exact"] = r.kl_divergence / g_exact_kl;
  }
}

void BM_TsneExact(benchmark::State& state) {
  run(state, TsneMethod::Exact);
}
void BM_TsneBarnesHut(benchmark::State& state) {
  run(state, TsneMethod::BarnesHut);
}

void BM_Knn(benchmark::State& state) {
  const Matrix& x = mixture(static_cast<int>(state.range(0)));
  double cpu = 0.0;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    auto g = state.range(1) ? xlt::analysis::knn_vptree(x, 91, 0, kThreads)
                            : xlt::analysis::knn_bruteforce(x, 91, kThreads);
    cpu += cpu_seconds() - c0;
    benchmark::DoNotOptimize(g.index.data());
  }
  state.counters["points"] = static_cast<double>(state.range(0));
  state.counters["cpu_s"] = cpu;
}

}  // namespace

// The exact baseline runs first so the Barnes-Hut N = 1,000 run can report ratios against it.
BENCHMARK(BM_TsneExact)->Arg(1000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_TsneBarnesHut)
    ->Arg(1000)
    ->Arg(5000)
    ->Arg(20000)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
// kNN stage alone: all-pairs (what t-SNE uses at 768-D, arg 0) vs the VP tree (arg 1).
BENCHMARK(BM_Knn)
    ->Args({5000, 0})
    ->Args({5000, 1})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

BENCHMARK_MAIN();
