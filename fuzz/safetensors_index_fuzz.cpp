// Fuzzes sharded checkpoints: the input is model.safetensors.index.json, beside two valid shards
// written once at start-up. Shard names are taken from the index, so this also checks that an
// index cannot make the reader open files outside its folder.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_util.h"
#include "xlt/io/safetensors.h"

namespace {

const std::filesystem::path& shard_dir() {
  static const std::filesystem::path dir = [] {
    auto d = xlt::fuzz::scratch_dir() / "sharded";
    std::filesystem::create_directories(d);
    static const float a[4] = {1, 2, 3, 4};
    static const float b[2] = {5, 6};
    auto view = [](const char* name, const float* p, int64_t n) {
      xlt::io::TensorView v;
      v.name = name;
      v.dtype = xlt::io::DType::F32;
      v.shape = {n};
      v.data = reinterpret_cast<const std::byte*>(p);
      v.nbytes = sizeof(float) * static_cast<std::size_t>(n);
      return v;
    };
    xlt::io::write_safetensors(d / "model-00001-of-00002.safetensors", {view("a.weight", a, 4)});
    xlt::io::write_safetensors(d / "model-00002-of-00002.safetensors", {view("b.bias", b, 2)});
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto index = shard_dir() / "model.safetensors.index.json";
  xlt::fuzz::write_bytes(index, {reinterpret_cast<const char*>(data), size});
  xlt::fuzz::expect_clean([&] {
    auto ck = xlt::io::Checkpoint::open(shard_dir());
    for (const auto& name : ck.names()) {
      const auto& t = ck.tensor(name);
      if (t.nbytes != static_cast<std::size_t>(t.numel()) * xlt::io::dtype_size(t.dtype)) {
        std::abort();
      }
    }
    (void)ck.total_bytes();
  });
  return 0;
}
