// Fuzzes SentencePiece model loading (sentencepiece.bpe.model, a protobuf) for XLM-R / XGLM.
// libsentencepiece is dlopen()ed and not instrumented, so coverage guidance comes only from
// xlt's side (the id layout, special tokens); ASan still sees every allocation it makes.
// The first input byte picks the family (XLM-R or XGLM); the rest is the model file.
#include <cstddef>
#include <cstdint>

#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto dir = xlt::fuzz::fresh_dir("spm");
  const bool xglm = data[0] & 1;
  xlt::fuzz::write_bytes(dir / "tokenizer_config.json",
                         xglm ? R"({"tokenizer_class": "XGLMTokenizer"})"
                              : R"({"tokenizer_class": "XLMRobertaTokenizer"})");
  xlt::fuzz::write_bytes(dir / "sentencepiece.bpe.model",
                         {reinterpret_cast<const char*>(data) + 1, size - 1});
  xlt::fuzz::expect_clean([&] {
    auto tok = xlt::text::load_tokenizer(dir);
    xlt::fuzz::exercise(*tok);
  });
  return 0;
}
