// Fuzzes the safetensors reader: the input is a whole .safetensors file (8-byte header length,
// JSON header, tensor bytes). Every tensor the reader accepts is read end to end, so an offset
// that escaped validation shows up as an out-of-bounds read under ASan.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "xlt/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = xlt::fuzz::scratch_dir() / "model.safetensors";
  xlt::fuzz::write_bytes(file, {reinterpret_cast<const char*>(data), size});
  xlt::fuzz::expect_clean([&] {
    auto st = xlt::io::SafetensorsFile::open(file);
    unsigned sum = 0;
    for (const auto& name : st->names()) {
      const auto& t = st->tensor(name);
      if (static_cast<std::size_t>(t.numel()) * xlt::io::dtype_size(t.dtype) != t.nbytes) {
        std::abort();  // the documented invariant: shape x dtype == byte span
      }
      for (std::size_t i = 0; i < t.nbytes; ++i) sum += static_cast<unsigned>(t.data[i]);
    }
    (void)sum;
  });
  return 0;
}
