// Tokenizer throughput on real multilingual text: every premise and hypothesis of XNLI dev
// en/es/fr/hi (XTREME format, 19,920 sentences) through mBERT's WordPiece tokenizer, as
// tokens/s (tokens = model tokens without [CLS]/[SEP]) on 1 and 2 threads, for the slow
// (vocab.txt) and fast (tokenizer.json) pipelines, and XLM-R's SentencePiece for comparison.
//
// Baseline measured in the same run: the cheapest dictionary tokenizer conceivable on the same
// text (split on ASCII spaces, look each word up in a std::unordered_map<std::string, int>),
// i.e. the cost of touching the bytes and doing one hash lookup per word. Each benchmark reports
// tokens/s (wall clock), tokens/cpu_s (tokens per CPU-second of the process: the per-core rate,
// stable on a loaded machine) and x_baseline = the baseline's CPU time for one pass over the text
// divided by this tokenizer's (the same text both ways; a tokens/s over words/s ratio would
// credit a tokenizer for splitting words into more pieces).
//
// Run: build/bench/tokenizer_bench. XLT_SHARED overrides the shared data folder.
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "xlt/text/tokenizer.h"

namespace {
namespace fs = std::filesystem;

fs::path shared() {
  if (const char* p = std::getenv("XLT_SHARED"); p && *p) return p;
  return fs::path(XLT_SOURCE_DIR) / ".." / "shared";
}

const std::vector<std::string>& sentences() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    for (const char* lang : {"en", "es", "fr", "hi"}) {
      std::ifstream in(shared() / "data" / "xnli" / "xtreme_format" /
                       ("dev-" + std::string(lang) + ".tsv"));
      std::string line;
      while (std::getline(in, line)) {
        auto t1 = line.find('\t');
        auto t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
        if (t2 == std::string::npos) continue;
        out.push_back(line.substr(0, t1));
        out.push_back(line.substr(t1 + 1, t2 - t1 - 1));
      }
    }
    return out;
  }();
  return all;
}

const xlt::text::Tokenizer& tokenizer(const std::string& which) {
  static std::unordered_map<std::string, std::unique_ptr<xlt::text::Tokenizer>> cache;
  auto& t = cache[which];
  if (!t) {
    const fs::path mbert = shared() / "data" / "bert-base-multilingual-cased";
    if (which == "slow") t = xlt::text::load_tokenizer(mbert / "vocab.txt");
    if (which == "fast") t = xlt::text::load_tokenizer(mbert / "tokenizer.json");
    if (which == "xlmr")
      t = xlt::text::load_tokenizer(shared() / "fixtures" / "spm" / "xlmr_unigram");
  }
  return *t;
}

double g_baseline_cpu_per_pass = 0;  // of BM_Baseline_HashLookup, which runs first

using Clock = std::chrono::steady_clock;

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Start {
  Clock::time_point wall = Clock::now();
  double cpu = process_cpu_seconds();
};

// tokens/s (wall clock), tokens per CPU-second of the whole process (= per-core throughput,
// meaningful even on a loaded machine), and how many times faster than the baseline one pass over
// the text is. Returns the CPU seconds per pass.
double report(benchmark::State& state, std::size_t tokens, const Start& start,
              bool is_baseline = false) {
  const double wall = std::chrono::duration<double>(Clock::now() - start.wall).count();
  const double cpu = process_cpu_seconds() - start.cpu;
  const double per_pass = cpu / static_cast<double>(state.iterations());
  state.counters["tokens/s"] = static_cast<double>(tokens) / wall;
  state.counters["tokens/cpu_s"] = static_cast<double>(tokens) / cpu;
  state.counters["tokens_per_iter"] = static_cast<double>(tokens) / state.iterations();
  if (g_baseline_cpu_per_pass > 0 && !is_baseline) {
    state.counters["x_baseline"] = g_baseline_cpu_per_pass / per_pass;
  }
  return per_pass;
}

void BM_Baseline_HashLookup(benchmark::State& state) {
  const auto& texts = sentences();
  if (texts.empty()) {
    state.SkipWithError("XNLI dev files not found (set XLT_SHARED)");
    return;
  }
  std::unordered_map<std::string, int> vocab;
  std::ifstream in(shared() / "data" / "bert-base-multilingual-cased" / "vocab.txt");
  std::string line;
  for (int id = 0; std::getline(in, line); ++id) vocab.emplace(line, id);
  std::size_t words = 0;
  long long sum = 0;
  const Start start;
  for (auto _ : state) {
    for (const std::string& t : texts) {
      std::size_t b = 0;
      while (b < t.size()) {
        std::size_t e = t.find(' ', b);
        if (e == std::string::npos) e = t.size();
        if (e > b) {
          auto it = vocab.find(t.substr(b, e - b));
          sum += it == vocab.end() ? 100 : it->second;
          ++words;
        }
        b = e + 1;
      }
    }
  }
  benchmark::DoNotOptimize(sum);
  g_baseline_cpu_per_pass = report(state, words, start, /*is_baseline=*/true);
}

void run_encode(benchmark::State& state, const std::string& which, int threads) {
  const auto& texts = sentences();
  if (texts.empty()) {
    state.SkipWithError("XNLI dev files not found (set XLT_SHARED)");
    return;
  }
  const auto& tok = tokenizer(which);
  xlt::text::EncodeOptions o;
  o.add_special_tokens = false;
  std::size_t tokens = 0;
  const Start start;
  for (auto _ : state) {
    if (threads == 1) {
      for (const std::string& t : texts) tokens += tok.encode(t, o).size();
    } else {
      for (const auto& e : tok.encode_batch(texts, o, threads)) tokens += e.size();
    }
  }
  report(state, tokens, start);
}

void BM_WordPieceSlow_1Thread(benchmark::State& s) {
  run_encode(s, "slow", 1);
}
void BM_WordPieceSlow_2Threads(benchmark::State& s) {
  run_encode(s, "slow", 2);
}
void BM_WordPieceFast_1Thread(benchmark::State& s) {
  run_encode(s, "fast", 1);
}
void BM_WordPieceFast_2Threads(benchmark::State& s) {
  run_encode(s, "fast", 2);
}
void BM_XlmRSentencePiece_1Thread(benchmark::State& s) {
  run_encode(s, "xlmr", 1);
}

}  // namespace

BENCHMARK(BM_Baseline_HashLookup)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_WordPieceSlow_1Thread)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_WordPieceSlow_2Threads)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_WordPieceFast_1Thread)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_WordPieceFast_2Threads)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_XlmRSentencePiece_1Thread)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_MAIN();
