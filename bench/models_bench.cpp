// Model throughput at real size: a randomly initialised model with bert-base-multilingual-cased's
// exact shape, 2 threads, float32. Inference (32 x 128 tokens) and a full training step (forward
// + backward + AdamW) at 32 x 128 and 16 x 128, each reported as tokens/s and as a fraction of a
// 2048^3 float32 GEMM measured through libtorch in the same run (the machine's practical peak).
//
// FLOPs counted: inference 2 x non-embedding parameters per token plus attention (QK^T and PV:
// 4 x seq x hidden per token and layer); training 6 x all non-embedding parameters per token plus
// 3 x the attention term. Embedding lookups are not FLOPs and are excluded.
//
// Run: build/bench/models_bench [--benchmark_filter=...]. Set XLT_BENCH_CONFIG to use another
// config.json (default: ../shared/data/bert-base-multilingual-cased/config.json).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "models/layers.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/models/training_step.h"

namespace {

constexpr int kThreads = 2;
constexpr int64_t kSeq = 128;

std::filesystem::path config_path() {
  if (const char* p = std::getenv("XLT_BENCH_CONFIG"); p && *p) return p;
  return std::filesystem::path(XLT_SOURCE_DIR) / ".." / "shared" / "data" /
         "bert-base-multilingual-cased" / "config.json";
}

xlt::io::ModelConfig& bench_config() {
  static xlt::io::ModelConfig config = [] {
    auto c = xlt::io::ModelConfig::load(config_path());
    c.num_labels = 3;
    c.id2label = {{0, "LABEL_0"}, {1, "LABEL_1"}, {2, "LABEL_2"}};
    return c;
  }();
  return config;
}

int64_t non_embedding_params(const xlt::models::Model& m) {
  int64_t n = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    if (name.find("embeddings.") == std::string::npos) n += p.numel();
  }
  return n;
}

double attention_flops_per_token(const xlt::io::ModelConfig& c) {
  return 4.0 * kSeq * c.hidden_size * c.num_hidden_layers;
}

double peak_rss_gb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0 / 1024.0;  // KiB -> GiB
}

xlt::models::ModelInputs random_batch(int64_t batch, const xlt::io::ModelConfig& c) {
  auto gen = at::detail::createCPUGenerator(7);
  xlt::models::ModelInputs in;
  in.input_ids = at::randint(1000, c.vocab_size, {batch, kSeq}, gen, at::kLong);
  in.attention_mask = at::ones({batch, kSeq}, at::kLong);
  in.token_type_ids = at::zeros({batch, kSeq}, at::kLong);
  in.labels = at::randint(0, c.num_labels, {batch}, gen, at::kLong);
  return in;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Process CPU seconds (all threads). On a shared machine the wall-clock fraction of peak swings
// with other load; FLOPs per CPU-second against the GEMM's FLOPs per CPU-second is steadier.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
// GEMM peak per thread count (index = threads), wall-clock and per CPU-second.
double g_peak_gflops[3] = {0, 0, 0};
double g_peak_gflops_cpu[3] = {0, 0, 0};

void BM_Gemm2048(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  xlt::models::set_threads(threads);
  state.SetLabel(xlt::models::ensure_fast_blas());
  const int64_t n = 2048;
  auto a = at::randn({n, n});
  auto b = at::randn({n, n});
  auto c = at::empty({n, n});
  at::mm_out(c, a, b);  // warm-up
  const double flops = 2.0 * n * n * n;
  const auto start = Clock::now();
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    at::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  const double iters = static_cast<double>(state.iterations());
  g_peak_gflops[threads] = flops * 1e-9 * iters / seconds_since(start);
  g_peak_gflops_cpu[threads] = flops * 1e-9 * iters / (cpu_seconds() - cpu0);
  state.counters["GFLOP/s"] = g_peak_gflops[threads];
}

// Counters: tokens/s, achieved GFLOP/s, its fraction of the GEMM peak, peak RSS so far.
void report(benchmark::State& state, int threads, double flops_per_iter, int64_t tokens_per_iter,
            double seconds, double cpu) {
  const double iters = static_cast<double>(state.iterations());
  const double gflops = flops_per_iter * 1e-9 * iters / seconds;
  const double gflops_cpu = flops_per_iter * 1e-9 * iters / cpu;
  const double peak = g_peak_gflops[threads], peak_cpu = g_peak_gflops_cpu[threads];
  state.counters["frac_of_peak_cpu"] = peak_cpu > 0 ? gflops_cpu / peak_cpu : 0;
  state.counters["tokens/s"] = static_cast<double>(tokens_per_iter) * iters / seconds;
  state.counters["GFLOP/s"] = gflops;
  state.counters["frac_of_peak"] = peak > 0 ? gflops / peak : 0.0;
  state.counters["peak_rss_GB"] = peak_rss_gb();
}

void BM_BertInference(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(1));
  xlt::models::set_threads(threads);
  const int64_t batch = state.range(0);
  auto model = xlt::models::create_model(bench_config(), 1);
  model->eval();
  auto in = random_batch(batch, bench_config());
  in.labels = at::Tensor();
  const double flops =
      static_cast<double>(batch * kSeq) *
      (2.0 * non_embedding_params(*model) + attention_flops_per_token(bench_config()));
  {
    c10::InferenceMode guard;
    model->forward(in);  // warm-up (allocator, thread pool)
  }
  const auto start = Clock::now();
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    c10::InferenceMode guard;
    auto out = model->forward(in);
    benchmark::DoNotOptimize(out.logits.data_ptr());
  }
  report(state, threads, flops, batch * kSeq, seconds_since(start), cpu_seconds() - cpu0);
}

void BM_BertTrainStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(1));
  xlt::models::set_threads(threads);
  const int64_t batch = state.range(0);
  auto model = xlt::models::create_model(bench_config(), 1);
  model->train();
  auto opt = xlt::models::make_adamw(*model);
  auto in = random_batch(batch, bench_config());
  const double flops =
      static_cast<double>(batch * kSeq) *
      (6.0 * non_embedding_params(*model) + 3.0 * attention_flops_per_token(bench_config()));
  xlt::models::train_step(*model, *opt, in);  // warm-up: allocates grads and AdamW state
  const auto start = Clock::now();
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    auto r = xlt::models::train_step(*model, *opt, in);
    benchmark::DoNotOptimize(r.loss);
  }
  report(state, threads, flops, batch * kSeq, seconds_since(start), cpu_seconds() - cpu0);
}

// Attention's two batched products (QK^T and PV, forward and backward) at mBERT's head shape for
// a batch of 32 x 12 heads of sequence length range(0): batched_matmul against at::matmul on the
// same operands, alternating, in this run. On libtorch 1.13 batched_matmul is its own parallel
// sgemm loop; on PyTorch 2.x it is at::matmul (ratio ~1).
void BM_AttentionMatmul(benchmark::State& state) {
  xlt::models::set_threads(kThreads);
  const int64_t B = 32, H = 12, T = state.range(0), D = 64;
  auto qkv = at::randn({B, T, 3 * H * D});
  auto parts = qkv.split(H * D, -1);
  auto heads = [&](const at::Tensor& x) { return x.view({B, T, H, D}).permute({0, 2, 1, 3}); };
  const auto q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);
  auto grad = at::randn({B, H, T, D});
  auto run = [&](bool own) {
    auto qq = q.detach().requires_grad_(true), kk = k.detach().requires_grad_(true);
    auto vv = v.detach().requires_grad_(true);
    auto mm = [&](const at::Tensor& x, const at::Tensor& y) {
      return own ? xlt::models::batched_matmul(x, y) : at::matmul(x, y);
    };
    auto p = at::softmax(mm(qq, kk.transpose(-1, -2)), -1);
    auto ctx = mm(p, vv);
    ctx.backward(grad);
    benchmark::DoNotOptimize(qq.grad().data_ptr());
  };
  run(true);
  run(false);
  double secs[2] = {0, 0};
  bool own_first = true;
  for (auto _ : state) {
    for (const bool own : {own_first, !own_first}) {
      const auto t0 = Clock::now();
      run(own);
      secs[own] += seconds_since(t0);
    }
    own_first = !own_first;
  }
  state.SetLabel(xlt::models::batched_matmul_loops(q, k.transpose(-1, -2)) ? "sgemm loop"
                                                                           : "at::matmul");
  const double iters = static_cast<double>(state.iterations());
  state.counters["matmul_ms"] = 1e3 * secs[0] / iters;
  state.counters["batched_ms"] = 1e3 * secs[1] / iters;
  state.counters["speedup"] = secs[0] / secs[1];
}

}  // namespace

// Args: {threads} / {batch, threads}. The configuration is 2 threads; 1 thread is also
// measured because on a shared 2-core machine a 2-thread run mostly measures waiting for the
// other thread. Few, long iterations: one training step at 32 x 128 is ~2 TFLOP.
BENCHMARK(BM_Gemm2048)->Arg(2)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_BertInference)
    ->Args({32, kThreads})
    ->Args({32, 1})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_BertTrainStep)
    ->Args({16, kThreads})
    ->Args({32, kThreads})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_AttentionMatmul)
    ->Arg(24)
    ->Arg(48)
    ->Arg(96)
    ->Arg(128)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();

BENCHMARK_MAIN();
