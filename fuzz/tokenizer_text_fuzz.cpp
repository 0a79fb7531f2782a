// Fuzzes the tokenizers on arbitrary input text (the other tokenizer targets fuzz the files and
// encode three fixed texts): the first byte picks a tokenizer (the demo's WordPiece vocab.txt,
// the demo XGLM SentencePiece BPE model and, when XLT_SHARED holds them, mBERT's tokenizer.json
// and the XLM-R unigram fixture); the rest, split at "\n=====\n", is a text and an optional pair
// text. Each must encode (alone, as a pair, truncated) with consistent outputs, or be refused
// with a typed input error (e.g. invalid UTF-8).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "tokenizer_fuzz_util.h"

namespace {

namespace fs = std::filesystem;

const std::vector<std::unique_ptr<xlt::text::Tokenizer>>& tokenizers() {
  static const auto all = [] {
    std::vector<std::unique_ptr<xlt::text::Tokenizer>> t;
    const fs::path demo = fs::path(XLT_SOURCE_DIR) / "examples" / "demo";
    t.push_back(xlt::text::load_tokenizer(demo));
    t.push_back(xlt::text::load_tokenizer(demo / "xglm"));
    const char* shared_env = std::getenv("XLT_SHARED");
    const fs::path shared = shared_env && *shared_env ? fs::path(shared_env)
                                                      : fs::path(XLT_SOURCE_DIR) / ".." / "shared";
    const fs::path fast = shared / "data" / "bert-base-multilingual-cased" / "tokenizer.json";
    const fs::path xlmr = shared / "fixtures" / "spm" / "xlmr_unigram";
    if (fs::exists(fast)) t.push_back(xlt::text::load_tokenizer(fast));
    if (fs::exists(xlmr)) t.push_back(xlt::text::load_tokenizer(xlmr));
    return t;
  }();
  return all;
}

void check(const xlt::text::Encoding& e, std::size_t len0, std::size_t len1) {
  const std::size_t n = e.ids.size();
  if (e.tokens.size() != n || e.offsets.size() != n || e.sequence_ids.size() != n ||
      e.attention_mask.size() != n || e.special_tokens_mask.size() != n) {
    std::abort();
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& o = e.offsets[i];
    const int seq = e.sequence_ids[i];
    if (seq < -1 || seq > 1 || o.begin > o.end) std::abort();
    if (seq >= 0 && o.end > (seq == 0 ? len0 : len1)) std::abort();  // inside its own text
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& all = tokenizers();
  const auto& tok = *all[data[0] % all.size()];
  const auto parts = xlt::fuzz::split_parts({reinterpret_cast<const char*>(data) + 1, size - 1}, 2);
  const std::string_view text = parts[0];
  const std::string_view pair = parts.size() > 1 ? parts[1] : std::string_view();
  xlt::fuzz::expect_clean([&] {
    xlt::text::EncodeOptions plain;
    const auto e = tok.encode(text, plain);
    check(e, text.size(), 0);
    (void)tok.decode(e.ids);
    (void)tok.tokenize(text);
    xlt::text::EncodeOptions cut;
    cut.max_length = 12;
    cut.truncation = xlt::text::TruncationStrategy::kLongestFirst;
    const auto p = tok.encode_pair(text, pair, cut);
    check(p, text.size(), pair.size());
    if (p.ids.size() > 12) std::abort();
  });
  return 0;
}
