// Shared by the tokenizer fuzz targets: a fresh folder per input, and a fixed set of texts that
// every tokenizer the loader accepts must encode, tokenize and decode without crashing.
#pragma once

#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "xlt/text/tokenizer.h"

namespace xlt::fuzz {

// An empty folder (the previous input's files removed).
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto d = scratch_dir() / name;
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  std::filesystem::create_directories(d);
  return d;
}

inline void exercise(const xlt::text::Tokenizer& tok) {
  xlt::text::EncodeOptions opt;
  opt.max_length = 16;
  opt.truncation = xlt::text::TruncationStrategy::kLongestFirst;
  const char* texts[] = {"Hello, world! [MASK] unaffable",
                         "caf\xc3\xa9 \xe0\xa4\xb9\xe0\xa4\xbf <s></s>", ""};
  for (const char* t : texts) {
    auto e = tok.encode_pair(t, "second text [SEP]", opt);
    if (e.ids.size() != e.offsets.size() || e.ids.size() != e.tokens.size()) std::abort();
    (void)tok.decode(e.ids);
    (void)tok.tokenize(t);
  }
  for (std::size_t i = 0; i < tok.vocab_size() && i < 64; ++i) {
    (void)tok.id_to_token(static_cast<xlt::text::TokenId>(i));
  }
}

}  // namespace xlt::fuzz
