// Regression tests for tokenizer files that the libFuzzer targets (fuzz/) found to misbehave.
#include <gtest/gtest.h>

#include <string>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/text/tokenizer.h"

namespace xlt::text {
namespace {
namespace fs = std::filesystem;

// fuzz/sentencepiece_fuzz: a mutated model (453 bytes, from the demo XGLM model) makes
// libsentencepiece throw darts_clone's "zero-length key" exception, which escaped as an internal
// error (exit 3) instead of a TokenizerError naming the file.
TEST(FuzzRegression, SentencePieceLibraryExceptionIsATokenizerError) {
  test::TempDir tmp;
  fs::copy_file(test::source_dir() / "tests" / "text" / "data" / "spm_zero_length_key.model",
                tmp / "sentencepiece.bpe.model");
  test::write_text(tmp / "tokenizer_config.json", R"({"tokenizer_class": "XGLMTokenizer"})");
  EXPECT_TRUE(test::throws_with<TokenizerError>(
      [&] { load_tokenizer(tmp.path()); },
      {"sentencepiece.bpe.model: not a valid SentencePiece model", "zero-length key"}, 2));
}

// fuzz/tokenizer_json_fuzz, fuzz/tokenizer_config_fuzz: a number beyond double range escaped the
// JSON reader as json::out_of_range (exit 3).
TEST(FuzzRegression, JsonNumberOverflowIsATokenizerError) {
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    test::TempDir tmp;
    test::write_text(tmp / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    test::write_text(tmp / file, R"({"model_max_length": 44444404404044044000398E4337})");
    EXPECT_TRUE(test::throws_with<TokenizerError>(
        [&] { load_tokenizer(tmp.path()); },
        {std::string(file) + ": malformed JSON", "number overflow"}, 2))
        << file;
  }
}

}  // namespace
}  // namespace xlt::text
