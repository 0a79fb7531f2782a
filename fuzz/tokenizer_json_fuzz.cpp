// Fuzzes tokenizer.json (the fast tokenizer pipeline: normalizer, pre-tokenizer, WordPiece
// model, post-processor, added tokens), then encodes with whatever loads.
#include <cstddef>
#include <cstdint>

#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = xlt::fuzz::fresh_dir("fast");
  xlt::fuzz::write_bytes(dir / "tokenizer.json", {reinterpret_cast<const char*>(data), size});
  xlt::fuzz::expect_clean([&] {
    auto tok = xlt::text::load_tokenizer(dir);
    xlt::fuzz::exercise(*tok);
  });
  return 0;
}
