// Fuzzes the slow BERT tokenizer's vocab.txt (one token per line) and, when accepted, encoding
// with it: a vocabulary with odd tokens (empty lines, "##" alone, invalid UTF-8) must load with a
// clear error or tokenize safely.
#include <cstddef>
#include <cstdint>

#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = xlt::fuzz::fresh_dir("vocab");
  xlt::fuzz::write_bytes(dir / "vocab.txt", {reinterpret_cast<const char*>(data), size});
  xlt::fuzz::expect_clean([&] {
    auto tok = xlt::text::load_tokenizer(dir);
    xlt::fuzz::exercise(*tok);
  });
  return 0;
}
