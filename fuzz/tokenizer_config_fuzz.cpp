// Fuzzes tokenizer_config.json and special_tokens_map.json (input parts separated by
// "\n=====\n") beside a small valid vocab.txt: special tokens, added_tokens_decoder, casing and
// length options must be validated or rejected with a TokenizerError.
#include <cstddef>
#include <cstdint>

#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = xlt::fuzz::split_parts({reinterpret_cast<const char*>(data), size}, 2);
  const auto dir = xlt::fuzz::fresh_dir("config");
  xlt::fuzz::write_bytes(dir / "vocab.txt",
                         "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n!\nun\n##aff\n"
                         "##able\nsecond\ntext\n");
  xlt::fuzz::write_bytes(dir / "tokenizer_config.json", parts[0]);
  if (parts.size() > 1) xlt::fuzz::write_bytes(dir / "special_tokens_map.json", parts[1]);
  xlt::fuzz::expect_clean([&] {
    auto tok = xlt::text::load_tokenizer(dir);
    xlt::fuzz::exercise(*tok);
  });
  return 0;
}
