// How fast a ~700 MB checkpoint (mBERT-base's tensor list: 119,547 x 768 word embeddings, 12
// layers) becomes addressable, against reading the same file into memory (the copying loader a
// zero-copy reader replaces), measured in the same run. Before the timings, one instrumented open
// reports resident memory (/proc/self/status) after open and after touching every page: anonymous
// memory must not grow (no copy), only file-backed pages do. The temp file is deleted at exit.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "xlt/io/safetensors.h"

namespace {
namespace fs = std::filesystem;
using xlt::io::DType;
using xlt::io::SafetensorsFile;
using xlt::io::TensorView;

fs::path g_file;

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
};

// bert-base-multilingual-cased's parameters (BertModel + pooler).
std::vector<Spec> mbert_specs() {
  const int64_t V = 119547, H = 768, F = 3072, P = 512;
  std::vector<Spec> s = {{"bert.embeddings.word_embeddings.weight", {V, H}},
                         {"bert.embeddings.position_embeddings.weight", {P, H}},
                         {"bert.embeddings.token_type_embeddings.weight", {2, H}},
                         {"bert.embeddings.LayerNorm.weight", {H}},
                         {"bert.embeddings.LayerNorm.bias", {H}},
                         {"bert.pooler.dense.weight", {H, H}},
                         {"bert.pooler.dense.bias", {H}}};
  for (int i = 0; i < 12; ++i) {
    std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      s.push_back({p + m + ".weight", {H, H}});
      s.push_back({p + m + ".bias", {H}});
    }
    s.push_back({p + "attention.output.LayerNorm.weight", {H}});
    s.push_back({p + "attention.output.LayerNorm.bias", {H}});
    s.push_back({p + "intermediate.dense.weight", {F, H}});
    s.push_back({p + "intermediate.dense.bias", {F}});
    s.push_back({p + "output.dense.weight", {H, F}});
    s.push_back({p + "output.dense.bias", {H}});
    s.push_back({p + "output.LayerNorm.weight", {H}});
    s.push_back({p + "output.LayerNorm.bias", {H}});
  }
  return s;
}

// Random float32 data; every tensor views a slice of one buffer the size of the largest one.
void write_checkpoint(const fs::path& path) {
  std::vector<Spec> specs = mbert_specs();
  std::size_t largest = 0;
  for (const auto& s : specs) {
    std::size_t n = 4;
    for (int64_t d : s.shape) n *= static_cast<std::size_t>(d);
    largest = std::max(largest, n);
  }
  std::vector<std::uint32_t> buf(largest / 4);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& v : buf) {  // xorshift64*: uniform floats in [-1, 1)
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    float f = static_cast<float>((x * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f - 1.0f;
    std::memcpy(&v, &f, 4);
  }
  std::vector<TensorView> views;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    TensorView t;
    t.name = specs[i].name;
    t.dtype = DType::F32;
    t.shape = specs[i].shape;
    t.nbytes = static_cast<std::size_t>(t.numel()) * 4;
    // Offset each tensor so that equal-shaped tensors do not hold identical bytes.
    std::size_t off = (i * 4096) % (largest - t.nbytes + 1);
    t.data = reinterpret_cast<const std::byte*>(buf.data()) + (off & ~std::size_t{3});
    views.push_back(std::move(t));
  }
  xlt::io::write_safetensors(path, views, {{"format", "pt"}});
}

// kB values of "Name:" lines in /proc/self/status.
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key) + 1));
  }
  return -1;
}

// Reads one byte per 4 KiB page of every tensor: faults every page in.
std::uint64_t touch_all(const SafetensorsFile& f) {
  std::uint64_t sum = 0;
  for (const auto& name : f.names()) {
    const TensorView& t = f.tensor(name);
    for (std::size_t i = 0; i < t.nbytes; i += 4096) sum += static_cast<std::uint8_t>(t.data[i]);
  }
  return sum;
}

void report_memory() {
  // Reset the peak-RSS mark (Linux >= 4.0) so VmHWM excludes the buffer used to write the file.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  long hwm0 = status_kb("VmHWM:");
  long anon0 = status_kb("RssAnon:"), file0 = status_kb("RssFile:");
  auto t0 = std::chrono::steady_clock::now();
  auto f = SafetensorsFile::open(g_file);
  std::size_t addressable = 0;
  for (const auto& n : f->names()) addressable += f->tensor(n).nbytes;
  double open_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  long anon1 = status_kb("RssAnon:"), file1 = status_kb("RssFile:");
  std::uint64_t sum = touch_all(*f);
  long anon2 = status_kb("RssAnon:"), file2 = status_kb("RssFile:");
  std::printf(
      "file: %s, %.1f MB, %zu tensors, %.1f MB addressable\n"
      "first open: %.3f ms\n"
      "RSS growth after open:        anon %+ld kB, file-backed %+ld kB\n"
      "RSS growth after touching all: anon %+ld kB, file-backed %+ld kB (checksum %llu)\n"
      "peak RSS (VmHWM) growth over open + touch: %+ld kB\n",
      g_file.c_str(), static_cast<double>(f->file_size()) / 1e6, f->names().size(),
      static_cast<double>(addressable) / 1e6, open_ms, anon1 - anon0, file1 - file0, anon2 - anon0,
      file2 - file0, static_cast<unsigned long long>(sum), status_kb("VmHWM:") - hwm0);
  std::fflush(stdout);
}

// Baseline: what a copying loader pays at minimum, one read() of the file into memory.
void BM_ReadWholeFileBaseline(benchmark::State& state) {
  std::vector<char> buf(fs::file_size(g_file));
  for (auto _ : state) {
    int fd = ::open(g_file.c_str(), O_RDONLY);
    std::size_t got = 0;
    while (got < buf.size()) {
      ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    ::close(fd);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_ReadWholeFileBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();

// Open + validate + every tensor's pointer resolved.
void BM_OpenAllTensorsAddressable(benchmark::State& state) {
  for (auto _ : state) {
    auto f = SafetensorsFile::open(g_file);
    for (const auto& n : f->names()) benchmark::DoNotOptimize(f->tensor(n).data);
  }
}
BENCHMARK(BM_OpenAllTensorsAddressable)->Unit(benchmark::kMillisecond)->UseRealTime();

// Open, then fault in every page (page cache warm): the cost a model load pays on first use.
void BM_OpenAndTouchAllPages(benchmark::State& state) {
  std::size_t bytes = fs::file_size(g_file);
  for (auto _ : state) {
    auto f = SafetensorsFile::open(g_file);
    benchmark::DoNotOptimize(touch_all(*f));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_OpenAndTouchAllPages)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  fs::path dir =
      fs::temp_directory_path() / ("xlt-safetensors-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  g_file = dir / "model.safetensors";
  int rc = 0;
  try {
    write_checkpoint(g_file);
    report_memory();
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "safetensors_bench: %s\n", e.what());
    rc = 3;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  benchmark::Shutdown();
  return rc;
}
