// Fuzzes the restricted torch.save reader twice per input: the bytes as a raw data.pkl (the
// unpickler alone, in memory), and as a whole pytorch_model.bin (zip or legacy container). Every
// tensor the reader accepts is materialised, which exercises the stride/offset checks.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "xlt/io/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  xlt::fuzz::expect_clean([&] {
    auto tensors = xlt::io::parse_torch_state_dict_pickle(bytes, "fuzz.pkl");
    // A fake storage of 64 bytes: materialising must either fit it or throw.
    static const std::byte storage[64] = {};
    for (const auto& entry : tensors) {
      const auto& name = entry.first;
      const auto& info = entry.second;
      xlt::fuzz::expect_clean(
          [&] { (void)xlt::io::materialize_contiguous(info, storage, sizeof storage, name); });
    }
  });
  const auto file = xlt::fuzz::scratch_dir() / "pytorch_model.bin";
  xlt::fuzz::write_bytes(file, bytes);
  xlt::fuzz::expect_clean([&] {
    auto ck = xlt::io::TorchBinCheckpoint::open(file);
    for (const auto& name : ck.names()) {
      xlt::fuzz::expect_clean([&] {
        auto t = ck.tensor(name);
        if (t.nbytes != static_cast<std::size_t>(t.numel()) * xlt::io::dtype_size(t.dtype)) {
          std::abort();
        }
      });
    }
  });
  return 0;
}
